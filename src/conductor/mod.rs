//! Task manager (reservation locks), provision state machine, workers, periodic jobs.
