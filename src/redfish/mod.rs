//! Typed Redfish client on reqwest + serde (DMTF DSP0266); only this module knows Redfish JSON.
