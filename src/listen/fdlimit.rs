//! The file descriptors `serve` needs: raise the soft `RLIMIT_NOFILE` to the hard limit at
//! start, then fit every listener's connection cap under it, keeping [`RESERVED_FDS`] for the
//! database, cache files, BMC clients and logs. When the limit cannot hold the configured
//! caps they shrink in proportion (with a warning); when it cannot hold a useful minimum,
//! `serve` refuses to start and says how to raise it.

use super::ConnLimits;

/// Descriptors kept for everything but client connections: database pool, cache and
/// publication files, outgoing BMC and image connections, the listeners, logs.
pub const RESERVED_FDS: u64 = 256;
/// Fewer connections than this per listener and the server is not worth starting.
pub const MIN_CONNECTIONS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum FdError {
    #[error("cannot read or raise the open-file limit (RLIMIT_NOFILE): {0}")]
    Rlimit(std::io::Error),
    #[error(
        "the open-file limit is {limit}, too low to serve: at least {needed} are needed \
         ({RESERVED_FDS} reserved plus {MIN_CONNECTIONS} connections per listener); raise it \
         with `ulimit -n` or LimitNOFILE= in the systemd unit"
    )]
    TooLow { limit: u64, needed: u64 },
}

/// A listener's caps and the descriptors each of its connections may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    pub limits: ConnLimits,
    pub fds_per_connection: u64,
}

/// Raises the soft open-file limit to the hard one; returns the soft limit now in force.
pub fn raise_nofile() -> Result<u64, FdError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(FdError::Rlimit(std::io::Error::last_os_error()));
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(FdError::Rlimit(std::io::Error::last_os_error()));
        }
        lim.rlim_cur = lim.rlim_max;
    }
    Ok(lim.rlim_cur)
}

/// The caps that fit under `limit`: `wants` unchanged when they fit, else every total scaled
/// down by the same factor, per-client caps with them.
pub fn fit(limit: u64, wants: &[Want]) -> Result<Vec<ConnLimits>, FdError> {
    let needed_min = RESERVED_FDS
        + wants
            .iter()
            .map(|w| MIN_CONNECTIONS as u64 * w.fds_per_connection)
            .sum::<u64>();
    if limit < needed_min {
        return Err(FdError::TooLow {
            limit,
            needed: needed_min,
        });
    }
    let available = limit - RESERVED_FDS;
    let wanted: u64 = wants
        .iter()
        .map(|w| w.limits.total as u64 * w.fds_per_connection)
        .sum();
    if wanted <= available {
        return Ok(wants.iter().map(|w| w.limits).collect());
    }
    Ok(wants
        .iter()
        .map(|w| {
            let total = ((w.limits.total as u64 * available) / wanted) as usize;
            let total = total.max(MIN_CONNECTIONS);
            // Per-client caps shrink alike, so one client still cannot fill a listener.
            let per_client = w.limits.per_client as u64 * total as u64 / w.limits.total as u64;
            ConnLimits {
                total,
                per_client: (per_client as usize).clamp(1, total),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(total: usize, per_client: usize, fds: u64) -> Want {
        Want {
            limits: ConnLimits { total, per_client },
            fds_per_connection: fds,
        }
    }

    #[test]
    fn caps_that_fit_are_kept() {
        let wants = [want(1000, 100, 1), want(2000, 200, 2)];
        let got = fit(100_000, &wants).unwrap();
        assert_eq!(got, vec![wants[0].limits, wants[1].limits]);
    }

    #[test]
    fn caps_shrink_in_proportion_and_stay_under_the_limit() {
        let wants = [want(1000, 100, 1), want(2000, 500, 2)];
        let got = fit(1024, &wants).unwrap();
        let used: u64 = got[0].total as u64 + 2 * got[1].total as u64;
        assert!(used <= 1024 - RESERVED_FDS, "{got:?}");
        assert_eq!(got[1].total / got[0].total, 2);
        assert!(got[1].per_client < got[1].total, "{got:?}");
        assert!(got[0].per_client < got[0].total, "{got:?}");
    }

    #[test]
    fn a_limit_below_the_minimum_is_refused_with_how_to_raise_it() {
        let err = fit(200, &[want(1000, 100, 1)]).unwrap_err();
        assert!(err.to_string().contains("ulimit -n"), "{err}");
    }
}
