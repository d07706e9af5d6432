//! Labs: named namespaces with the node, the remote, the wire and one container per mode.

pub mod mode;

pub use mode::Mode;
