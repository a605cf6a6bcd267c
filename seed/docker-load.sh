#!/bin/bash
# Used by docker-compose.yml: loads the SecureCart seed CSVs after schema.sql ran.
set -e
for table in products customers inventory; do
  psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "\\copy $table FROM '/seed/$table.csv' WITH (FORMAT csv, HEADER true)"
done
