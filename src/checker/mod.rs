//! Checkers: pure functions over histories and traces.
