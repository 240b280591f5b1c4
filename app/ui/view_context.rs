//! What a view reads (the store, the jobs' status, the map) and where it
//! sends its commands: the one thing every panel and window takes, apart
//! from the `Views` aggregate that holds them all.

use super::command::{AppCommand, CommandSender};
use super::job_status::JobStatus;
use super::map_view::MapView;
use super::store::Store;

/// What a view reads, and where it sends commands.
pub struct ViewContext<'a> {
    pub store: &'a Store,
    pub jobs: &'a JobStatus,
    pub map: &'a MapView,
    commands: &'a CommandSender,
}

impl<'a> ViewContext<'a> {
    pub fn new(
        store: &'a Store,
        jobs: &'a JobStatus,
        map: &'a MapView,
        commands: &'a CommandSender,
    ) -> Self {
        Self {
            store,
            jobs,
            map,
            commands,
        }
    }

    /// Asks for an effect (run after the frame's layout).
    pub fn send(&self, command: AppCommand) {
        self.commands.send(command);
    }
}
