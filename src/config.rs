//! Configuration: `etc/ironcast.toml` plus `IRONCAST_<SECTION>__<KEY>` overrides, validated once
//! at start into one [`Config`].
