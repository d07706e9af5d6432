//! `ptp`: a routed veth, no bridge, no NAT (the CNI ptp plugin, Calico).

use super::super::build::Builder;
use super::super::plan::{self, ModePlan};
use super::super::{LabError, ModeInfo};
use super::{remote_route_via_node, routed_veth, Backlog, ModeDriver, Traits};

pub struct Ptp;
pub const PTP: Ptp = Ptp;

impl ModeDriver for Ptp {
    fn name(&self) -> &'static str {
        "ptp"
    }
    fn describe(&self) -> &'static str {
        "routed veth, no bridge, no NAT (CNI ptp, Calico)"
    }
    fn traits(&self) -> Traits {
        Traits {
            default: true,
            ..Traits::container(Backlog {
                per_transaction: 4,
                why: "the container's veth adds one backlog wait per direction to the wire's two",
            })
        }
    }
    fn plan(&self) -> ModePlan {
        ModePlan::at(plan::PTP_CTR)
    }
    fn build(&self, b: &mut Builder, ns: &str) -> Result<ModeInfo, LabError> {
        routed_veth(b, ns, "veth-ptp", plan::PTP_NODE, plan::PTP_CTR)?;
        remote_route_via_node(b, plan::PTP_NET, 24)?;
        Ok(b.info(ns, plan::PTP_CTR, true))
    }
}
