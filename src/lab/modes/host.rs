//! `host`: no container, the node's own stack (the baseline every mode is compared with).

use super::super::build::Builder;
use super::super::plan::{self, v6, ModePlan};
use super::super::{LabError, ModeInfo};
use super::{Backlog, ModeDriver, Traits};

pub struct Host;
pub const HOST: Host = Host;

impl ModeDriver for Host {
    fn name(&self) -> &'static str {
        "host"
    }
    fn describe(&self) -> &'static str {
        "no container: the node's own network stack (baseline)"
    }
    fn traits(&self) -> Traits {
        Traits {
            default: true,
            own_namespace: false,
            ..Traits::container(Backlog {
                per_transaction: 2,
                why: "one backlog wait per direction: the wire (a veth) into the remote and back into the node",
            })
        }
    }
    fn plan(&self) -> ModePlan {
        ModePlan::at(plan::NODE)
    }
    fn build(&self, b: &mut Builder, _ns: &str) -> Result<ModeInfo, LabError> {
        Ok(ModeInfo {
            netns: b.netns_path("node"),
            addr: plan::NODE,
            addr6: b.spec().ipv6.then(|| v6(plan::NODE)),
            ifname: "eth0".into(),
            server: plan::REMOTE,
        })
    }
}
