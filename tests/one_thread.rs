//! With one worker thread (`--threads 1`), commands still run on the worker: started from
//! the main thread, every parallel kernel would hand its work to the worker and wait for
//! it (two thread wake-ups per kernel; gpt sampling ran 2.7x slower). Its own test binary:
//! the thread pool is the process's.

use neurite::run_on_worker;
use neurite::runtime::threads::init_threads;

#[test]
fn with_one_thread_the_command_runs_on_the_worker_and_kernels_stay_there() {
    assert_eq!(init_threads(Some(1)), 1);
    assert_eq!(
        rayon::current_thread_index(),
        None,
        "the test runs on its own thread"
    );
    let (on_worker, inside) = run_on_worker(|| {
        // A kernel started by the driver runs its pieces on the same worker, here.
        let here = rayon::current_thread_index();
        let pieces: Vec<_> = (0..8)
            .map(|_| rayon::join(rayon::current_thread_index, rayon::current_thread_index))
            .collect();
        (here, pieces)
    });
    assert_eq!(on_worker, Some(0));
    assert!(
        inside.iter().all(|&p| p == (Some(0), Some(0))),
        "{inside:?}"
    );
    // The result and a panic's message both come back.
    assert_eq!(run_on_worker(|| 6 * 7), 42);
    let caught = std::panic::catch_unwind(|| run_on_worker(|| panic!("from the driver")));
    assert!(caught.is_err());
}
