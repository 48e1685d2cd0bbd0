//! The `neurite` command.

pub fn main() -> i32 {
    0
}
