-- When a call's time to commit started (its 202 at intake, or the update that routed it to
-- community): the budget is this plus the rules' commit_within, so it outlives a restart of matching.
-- NULL for a pending record (a cancel or an update read before the call) until it is offered.
ALTER TABLE matching.calls ADD COLUMN commit_from timestamptz;
