//! Standard output for every command. A reader that stops early (`migsim repro ... | head`)
//! closes the pipe; `println!` would then panic. Here the first failed write marks standard output
//! closed and later lines are dropped, so the command still finishes its work (bundles, exit code)
//! and exits with the code its verdicts give.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes one line to standard output, unless it was closed.
pub fn line(arguments: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{arguments}").is_err() || out.flush().is_err() {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Writes many lines through one buffer (a trace listing), stopping at a closed pipe.
pub fn lines(lines: impl IntoIterator<Item = String>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for text in lines {
        if writeln!(out, "{text}").is_err() {
            CLOSED.store(true, Ordering::Relaxed);
            return;
        }
    }
    if out.flush().is_err() {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// `println!` for commands: see the module's doc.
macro_rules! say {
    () => {
        $crate::cli::output::line(format_args!(""))
    };
    ($($argument:tt)*) => {
        $crate::cli::output::line(format_args!($($argument)*))
    };
}

pub(crate) use say;
