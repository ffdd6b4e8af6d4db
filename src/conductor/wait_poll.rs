//! Nodes waiting in wait call-back whose deploy driver can tell from the outside that they
//! finished (iso-install: the node powered itself off) or that a watchdog ran out: every
//! `[iso_install] poll_interval_s` each such node's driver is asked (`poll_wait`) under the
//! node's lock, and a decision ends the wait as a call-back would (`finish_wait`). A node
//! locked by someone else is skipped until the next round.

use std::time::Duration;

use deploy_drivers::WaitCheck;

use super::states::ProvisionState;
use super::{release, worker, Conductor};

impl Conductor {
    /// Polls waiting nodes every `every` until the process ends.
    pub fn spawn_wait_poller(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = this.poll_waiting().await {
                    tracing::warn!(error = %e, "polling nodes in wait call-back failed");
                }
            }
        })
    }

    /// One round over the nodes in wait call-back.
    pub async fn poll_waiting(&self) -> super::ConductorResult<()> {
        let waiting = self
            .store
            .nodes_in_states(&[ProvisionState::WaitCallback.as_str()])
            .await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        for node in waiting {
            let Some(lock) = self.store.lock_node(&node.uuid, self.name()).await? else {
                continue;
            };
            let fresh = match self.store.node_by_uuid(&node.uuid).await? {
                Some(n) if n.provision_state == ProvisionState::WaitCallback.as_str() => n,
                _ => {
                    release(lock).await;
                    continue;
                }
            };
            let check = worker::poll_wait(self, &lock, &fresh, now).await;
            release(lock).await;
            let result = match check {
                Ok(WaitCheck::Waiting) => continue,
                Ok(WaitCheck::Finished(why)) => {
                    self.history(&node.uuid, "deploy_step", "INFO", &why).await;
                    Ok(())
                }
                Ok(WaitCheck::Failed(why)) => Err(why),
                Err(e) => {
                    tracing::warn!(node = %node.uuid, error = %e, "poll of a waiting node failed");
                    continue;
                }
            };
            if let Err(e) = self.finish_wait(&node.uuid, result).await {
                tracing::warn!(node = %node.uuid, error = %e, "ending the wait failed");
            }
        }
        Ok(())
    }
}
