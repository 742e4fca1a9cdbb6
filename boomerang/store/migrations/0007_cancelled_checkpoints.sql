-- A cancelled run closes its open checkpoints as `cancelled` (checkpoint_cancelled events).
ALTER TABLE approvals DROP CONSTRAINT approvals_status_check;
ALTER TABLE approvals ADD CONSTRAINT approvals_status_check CHECK (status IN (
    'pending', 'approved', 'rejected', 'iterate', 'pivot', 'override_proceed', 'expired', 'cancelled'));
