//! Simulated BMC fleet (filled in below).
