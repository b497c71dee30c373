//! The one durable-replace sequence the systems under test share: write a temporary file, fsync
//! it, rename it over the old one, fsync the directory. A crash at any point leaves the old file or
//! the new one, never a mix (the disk model's rename is atomic and names are durable at
//! `fsync_dir`). Only disk calls through `NodeDisk`; no protocol decisions.

use crate::world::{DiskError, Message, NodeDisk};

/// Replaces `name` with `bytes` atomically and durably, using `{name}.tmp` on the way.
pub async fn replace_file<M: Message>(disk: &NodeDisk<'_, M>, name: &str, bytes: &[u8]) -> Result<(), DiskError> {
    let temporary = format!("{name}.tmp");
    match disk.remove(&temporary).await {
        Ok(()) | Err(DiskError::NotFound { .. }) => {}
        Err(error) => return Err(error),
    }
    disk.create(&temporary).await?;
    disk.write_at(&temporary, 0, bytes).await?;
    disk.fsync(&temporary).await?;
    disk.rename(&temporary, name).await?;
    disk.fsync_dir().await
}
