-- How many teams matching offered a call at once in this offer's attempt (NULL: this team alone):
-- the first of them to accept takes the call, and notify answers the others `call_taken`.
ALTER TABLE notify.assignments ADD COLUMN offered_with integer CHECK (offered_with >= 2);
