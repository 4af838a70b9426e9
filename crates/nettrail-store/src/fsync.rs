//! The one durable step every file format here shares: fsyncing a directory after a
//! file in it was created or renamed.

use std::fs::File;
use std::path::Path;

use crate::error::{Result, StoreError};

/// Fsyncs a directory so that a rename or a new file in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("syncing directory", dir, e))
}
