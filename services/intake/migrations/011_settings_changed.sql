-- Intake keeps the credentials and triage settings every call reads in memory while it listens
-- (services/intake/remembered.py): any write to the tables they come from tells it to read again.
CREATE FUNCTION intake.settings_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('intake_settings', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER psaps_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON intake.psaps
    FOR EACH STATEMENT EXECUTE FUNCTION intake.settings_changed();
CREATE TRIGGER credentials_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON intake.credentials
    FOR EACH STATEMENT EXECUTE FUNCTION intake.settings_changed();
CREATE TRIGGER triage_rules_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON intake.triage_rules
    FOR EACH STATEMENT EXECUTE FUNCTION intake.settings_changed();
CREATE TRIGGER address_sets_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON intake.address_sets
    FOR EACH STATEMENT EXECUTE FUNCTION intake.settings_changed();
CREATE TRIGGER capacity_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON intake.capacity
    FOR EACH STATEMENT EXECUTE FUNCTION intake.settings_changed();
