//! The experiment behind `nslat compare` (to be written).
