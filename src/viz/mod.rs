//! PNG pictures of a training run: loss and accuracy curves, the first convolution's filters,
//! a confusion matrix and attention overlays.
//!
//! Every picture is rendered into an RGB buffer in memory, encoded as PNG and written with
//! [`crate::checkpoint::write_atomic`], so a crash never leaves a half-written file. Text uses
//! DejaVu Sans, embedded at compile time (the `dejavu` crate) and drawn by plotters through
//! ab_glyph: nothing depends on the fonts of the machine. Should the font ever fail to load,
//! pictures are drawn without text rather than failing.
//!
//! One file per picture: [`curves`], [`filters`], [`confusion`], [`attention`]; [`canvas`]
//! holds the pixel buffer, colour maps and PNG encoding they share.

pub mod attention;
pub mod canvas;
pub mod confusion;
pub mod curves;
pub mod filters;

pub use attention::attention_overlay;
pub use confusion::confusion_matrix;
pub use curves::{
    plot_curves, plot_curves_with, training_curves, CurveChart, EpochMetrics, Series,
};
pub use filters::filter_grid;

use std::sync::OnceLock;

/// The font family name under which the embedded font is registered with plotters.
pub(crate) const FONT: &str = "sans-serif";

/// Registers the embedded font once; returns whether text can be drawn.
pub(crate) fn fonts_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        plotters::style::register_font(
            FONT,
            plotters::style::FontStyle::Normal,
            dejavu::sans::regular(),
        )
        .is_ok()
    })
}
