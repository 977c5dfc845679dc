-- An agency may pause itself (staffing): while paused, none of its teams is offered a call.
ALTER TABLE matching.agencies ADD COLUMN paused_at timestamptz, ADD COLUMN pause_reason text;
