//! nftables rules inside lab namespaces, via the nftables crate (to be written).
