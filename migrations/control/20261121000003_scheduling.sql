-- btree_gist lets an exclusion constraint combine "same provider" (=) with "overlapping time"
-- (&&), so PostgreSQL itself refuses a double booking. Extensions are per database; clinic
-- schemas find the operator classes by type, whatever their search_path.
CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public;
