//! One consistent snapshot of what the directory holds.

use std::collections::BTreeMap;

use ferrolb_crds::ClusterResources;
use ferrolb_crds::standalone::StandaloneStatus;
use ferrolb_crds::v1alpha1::SpeakerState;
use ferrolb_crds::yaml::UnknownField;

use crate::FileError;

/// Everything in force at one moment.
#[derive(Clone, Debug, Default)]
pub struct ClusterView {
    /// Increases by one with every changed view (0: nothing read yet).
    pub generation: u64,
    /// The last good objects of every manifest file, merged in file-name order.
    pub resources: ClusterResources,
    /// Files (and the directory) that do not load now, sorted by file.
    pub file_errors: Vec<FileError>,
    /// Fields of loaded documents that ferrolb does not know (typos), sorted by file.
    pub unknown_fields: Vec<UnknownField>,
    /// The controller's `DIR/.ferrolb/status.yaml` (read only with [`crate::Options::state_files`]).
    pub controller_status: Option<StandaloneStatus>,
    /// Other speakers' `DIR/.ferrolb/speaker-NODE.yaml`, by node name.
    pub speakers: BTreeMap<String, SpeakerState>,
}

impl ClusterView {
    /// Whether some manifest file has never loaded (an error and no last good version): the
    /// objects in it are unknown, so nothing absent from the view may be treated as deleted.
    pub fn has_unloaded_files(&self) -> bool {
        self.file_errors
            .iter()
            .any(|e| !e.kept_previous && !e.file.starts_with(crate::STATE_DIR))
    }
}
