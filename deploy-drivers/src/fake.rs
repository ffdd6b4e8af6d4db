//! The `fake` deploy interface (Ironic's fake-hardware): a deploy that only touches the boot
//! device and power ports and waits a configurable time, so the API, the conductor and demos
//! run with no hardware. Every step is reported through [`DeployEvents`].

use std::time::Duration;

use async_trait::async_trait;

use crate::driver::*;
use crate::ports::*;

/// Deploy driver that sets boot to disk, waits `deploy_delay`, and powers the node on.
#[derive(Debug, Clone, Default)]
pub struct FakeDeploy {
    pub deploy_delay: Duration,
    pub undeploy_delay: Duration,
}

impl FakeDeploy {
    pub fn new(deploy_delay: Duration, undeploy_delay: Duration) -> Self {
        Self {
            deploy_delay,
            undeploy_delay,
        }
    }
}

fn mode(node: &NodeView) -> BootMode {
    node.boot_mode.unwrap_or(BootMode::Uefi)
}

#[async_trait]
impl DeployDriver for FakeDeploy {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn validate(&self, _node: &NodeView, _ports: &Ports) -> Result<(), DeployError> {
        Ok(())
    }

    async fn deploy(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
    ) -> Result<DeployOutcome, DeployError> {
        events.step("set_boot_device", "disk, persistent").await;
        ports
            .boot
            .set_boot_device(BootTarget::Disk, true, mode(node))
            .await
            .map_err(|e| DeployError::new("set_boot_device", e))?;
        events
            .step(
                "write_image",
                &format!("fake write, {} ms", self.deploy_delay.as_millis()),
            )
            .await;
        if !self.deploy_delay.is_zero() {
            tokio::time::sleep(self.deploy_delay).await;
        }
        events.step("power_on", "reboot into the instance").await;
        ports
            .power
            .set_power(PowerAction::Reboot)
            .await
            .map_err(|e| DeployError::new("power_on", e))?;
        Ok(DeployOutcome::Active)
    }

    async fn undeploy(
        &self,
        _node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        events.step("power_off", "").await;
        ports
            .power
            .set_power(PowerAction::Off)
            .await
            .map_err(|e| DeployError::new("power_off", e))?;
        if !self.undeploy_delay.is_zero() {
            tokio::time::sleep(self.undeploy_delay).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{fake_ports, CallLog};
    use serde_json::Value;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Steps(Mutex<Vec<String>>);

    #[async_trait]
    impl DeployEvents for Steps {
        async fn step(&self, step: &str, _detail: &str) {
            self.0.lock().unwrap().push(step.to_string());
        }
        async fn save_internal(&self, _key: &str, _value: Value) {}
    }

    #[tokio::test]
    async fn deploy_then_undeploy_records_calls_in_order() {
        let log = CallLog::new();
        let ports = fake_ports(&log, PowerState::Off, Duration::ZERO);
        let driver = FakeDeploy::default();
        let node = NodeView::default();
        let steps = Steps::default();
        let out = driver.deploy(&node, &ports, &steps).await.unwrap();
        assert_eq!(out, DeployOutcome::Active);
        assert_eq!(ports.power.power_state().await.unwrap(), PowerState::On);
        driver.undeploy(&node, &ports, &steps).await.unwrap();
        assert_eq!(
            log.calls(),
            vec![
                "boot.set_boot_device(Disk, persistent=true, Uefi)",
                "power.set_power(Reboot)",
                "power.power_state()",
                "power.set_power(Off)",
            ]
        );
        assert_eq!(
            *steps.0.lock().unwrap(),
            vec!["set_boot_device", "write_image", "power_on", "power_off"]
        );
    }

    #[tokio::test]
    async fn injected_failure_names_the_step() {
        let log = CallLog::new();
        log.fail_on(
            "power.set_power",
            PortError::new(PortErrorKind::Unreachable, "bmc gone"),
        );
        let ports = fake_ports(&log, PowerState::Off, Duration::ZERO);
        let err = FakeDeploy::default()
            .deploy(&NodeView::default(), &ports, &Steps::default())
            .await
            .unwrap_err();
        assert_eq!(err.step, "power_on");
        assert_eq!(err.source.kind, PortErrorKind::Unreachable);
    }
}
