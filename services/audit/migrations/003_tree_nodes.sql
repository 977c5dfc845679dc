-- Interior nodes of the Merkle tree (level >= 1; a level-0 node is the leaf hash of
-- audit.events.row_hash), written with each append, so a proof reads O(log^2 n) nodes, not every row.
CREATE TABLE audit.tree_nodes (
    level smallint NOT NULL,
    idx   bigint NOT NULL,
    hash  bytea NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TRIGGER tree_nodes_append_only BEFORE UPDATE OR DELETE ON audit.tree_nodes
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER tree_nodes_no_truncate BEFORE TRUNCATE ON audit.tree_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
GRANT SELECT, INSERT ON audit.tree_nodes TO audit_writer;
