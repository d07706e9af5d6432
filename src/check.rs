//! Feature checks per mode behind `nslat check` (to be written).
