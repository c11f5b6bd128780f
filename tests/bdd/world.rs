//! The state of one scenario: its driver and the answers it has had.

use anyhow::{Context, Result};
use cucumber::World;

use crate::{
    driver::{Driver, RawOutcome, Reply, Stoppable},
    metrics::Sample,
};

/// Built fresh for every scenario; the level's `before` hook installs the driver.
#[derive(Default, World)]
pub struct PageTrackerWorld {
    pub driver: Option<Driver>,
    /// Answers to the latest action, in the order they were sent.
    pub replies: Vec<Reply>,
    /// What came back for the latest raw bytes sent.
    pub raw: Option<RawOutcome>,
    /// The scenario's own server, until a step stops it.
    pub server: Option<Stoppable>,
    /// Whether a step has stopped the server.
    pub stopped: bool,
    /// The scenario's server after it was asked to stop, until it has stopped.
    pub stopping: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The store's count of connections received when a step started watching it.
    pub connections_before: Option<u64>,
    /// The metrics as the operator noted them, to compare later figures with.
    pub noted: Option<Vec<Sample>>,
    /// Redis' refusal of the latest command sent as the service's user (`None`: it ran).
    pub refusal: Option<Option<String>>,
    /// Every address a visitor asked for other than the page.
    pub asked_for: Vec<String>,
}

impl std::fmt::Debug for PageTrackerWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageTrackerWorld")
            .field("driver", &self.driver)
            .field("replies", &self.replies)
            .field("raw", &self.raw)
            .field("stopped", &self.stopped)
            .field("asked_for", &self.asked_for)
            .finish_non_exhaustive()
    }
}

impl PageTrackerWorld {
    /// Installs the level's driver, taking out the server for the steps that stop it.
    pub fn set_driver(&mut self, mut driver: Driver) {
        self.server = driver.server.take();
        self.driver = Some(driver);
    }

    pub fn driver(&self) -> Result<&Driver> {
        self.driver
            .as_ref()
            .context("no driver: the level did not set up this scenario")
    }

    /// The answer to the latest request.
    pub fn last_reply(&self) -> Result<&Reply> {
        self.replies.last().context("no request has been sent yet")
    }
}
