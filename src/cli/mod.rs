//! The command-line interface: one module per `migsim` command. Commands parse flags, call the
//! library and map outcomes to the exit codes of DESIGN.md; they hold no simulation logic.

pub mod validate;
