//! Content-addressed image cache: fetch, verify, quota, leases, GC.
