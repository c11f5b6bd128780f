//! The state of one scenario: its driver and the answers it has had.

use anyhow::{Context, Result};
use cucumber::World;

use crate::driver::{Driver, Reply};

/// Built fresh for every scenario; the level's `before` hook installs the driver.
#[derive(Debug, Default, World)]
pub struct PageTrackerWorld {
    pub driver: Option<Driver>,
    /// Answers to the latest action, in the order they were sent.
    pub replies: Vec<Reply>,
}

impl PageTrackerWorld {
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
