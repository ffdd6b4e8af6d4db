//! (VM proof: below)
