//! The flags that take a network, `ADDR/LEN`: `--addr` (an address on a network, v4 or v6) and
//! `--service-cidr` (an IPv4 network, no host bits). Parsers only, on ipnet; what the addresses
//! are used for is the caller's.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;

/// A network flag that does not parse: one line, what is wrong and what to give.
#[derive(Debug, thiserror::Error)]
pub enum CidrError {
    #[error("bad address '{0}': give an address with a prefix length, like 198.18.0.50/24")]
    Bad(String),
    #[error("bad --service-cidr '{0}': give an IPv4 network like 198.19.0.0/16 (your cluster's Service CIDR, e.g. 10.96.0.0/12)")]
    BadService(String),
    #[error("bad --service-cidr '{given}': host bits are set; did you mean {net}?")]
    ServiceHostBits { given: String, net: String },
}

/// Parses `ADDR/LEN` (v4 or v6): an address on a network, like `198.18.0.50/24`.
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u8), CidrError> {
    let bad = || CidrError::Bad(s.to_string());
    let (a, l) = s.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = a.parse().map_err(|_| bad())?;
    let len: u8 = l.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max || addr.is_unspecified() || addr.is_multicast() {
        return Err(bad());
    }
    Ok((addr, len))
}

/// Parses an IPv4 network `ADDR/LEN` (LEN 1..=32, no host bits) for `--service-cidr`.
pub fn parse_service_cidr(s: &str) -> Result<(Ipv4Addr, u8), CidrError> {
    let bad = || CidrError::BadService(s.to_string());
    let (a, l) = s.trim().split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
    let len: u8 = l.parse().map_err(|_| bad())?;
    if !(1..=32).contains(&len) || addr.is_multicast() || addr.is_broadcast() {
        return Err(bad());
    }
    let net = Ipv4Net::new(addr, len).map_err(|_| bad())?.trunc();
    if net.addr() != addr {
        return Err(CidrError::ServiceHostBits {
            given: s.to_string(),
            net: net.to_string(),
        });
    }
    Ok((addr, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse() {
        assert_eq!(
            parse_cidr("198.18.0.50/24").unwrap(),
            ("198.18.0.50".parse().unwrap(), 24)
        );
        assert_eq!(parse_cidr("2001:2::5/64").unwrap().1, 64);
        for bad in [
            "198.18.0.50",
            "198.18.0.50/33",
            "1.2.3/24",
            "x/1",
            "0.0.0.0/0",
            "2001:2::5/129",
            "/24",
        ] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn service_cidrs_parse() {
        assert_eq!(
            parse_service_cidr("198.19.0.0/16").unwrap(),
            (Ipv4Addr::new(198, 19, 0, 0), 16)
        );
        assert_eq!(
            parse_service_cidr(crate::lab::plan::CLUSTER_CIDR)
                .unwrap()
                .1,
            16
        );
        assert_eq!(parse_service_cidr("10.96.0.0/12").unwrap().1, 12);
        assert_eq!(parse_service_cidr("198.19.0.10/32").unwrap().1, 32);
        match parse_service_cidr("198.19.0.10/16") {
            Err(CidrError::ServiceHostBits { net, .. }) => assert_eq!(net, "198.19.0.0/16"),
            other => panic!("{other:?}"),
        }
        for bad in [
            "198.19.0.0",
            "198.19.0.0/0",
            "198.19.0.0/33",
            "2001:2::/64",
            "224.0.0.0/4",
            "x/16",
            "",
        ] {
            assert!(parse_service_cidr(bad).is_err(), "{bad}");
        }
    }
}
