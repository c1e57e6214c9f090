package sqlite

// WALCheckpointFrames is walCheckpointFrames, for the tests of the WAL's
// bounds.
const WALCheckpointFrames = walCheckpointFrames
