//! The seed runner: runs one (scenario, seed) on a fresh OS thread with a fresh madsim runtime,
//! and a range of seeds on every core. It owns the boundary between the simulation (single
//! threaded, deterministic) and the host (threads, wall clock, progress bars): nothing it does on
//! the host side may feed back into a simulation.

use std::future::Future;

/// Runs `body` inside a fresh madsim runtime seeded with `seed`, on a fresh OS thread (madsim and
/// some crates keep per-thread state that differs between runs on one thread). A panic inside the
/// simulation comes back as `Err` with its message.
pub fn in_fresh_runtime<Body, Fut, T>(seed: u64, body: Body) -> Result<T, String>
where
    Body: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let thread = std::thread::Builder::new()
        .name(format!("seed-{seed}"))
        // Deep async state machines of the system under test live on this thread's stack.
        .stack_size(64 << 20)
        .spawn(move || {
            let runtime = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
            runtime.block_on(body())
        })
        .map_err(|error| format!("could not start a thread for seed {seed}: {error}"))?;
    thread.join().map_err(|payload| panic_message(payload.as_ref()))
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}
