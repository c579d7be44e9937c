# The one list of what s3scan_jobs is built and installed from, read by both the Makefile (PGXS)
# and CMakeLists.txt. CMakeLists.txt reads each list by its name: "NAME = \", then one file a
# line, every line but the last ending in " \".

# The C++ sources of the module.
S3SCAN_SOURCES = \
	src/s3scan_jobs.cpp \
	src/job_status.cpp \
	src/live_counts.cpp \
	src/refresh.cpp \
	src/data_changes.cpp \
	src/pinned_sql.cpp \
	src/citus_shards.cpp \
	src/distributed_drop.cpp \
	src/touch_trigger.cpp \
	src/counter_triggers.cpp \
	src/table_guards.cpp \
	src/delta_rows.cpp \
	src/transaction_deltas.cpp \
	src/worker_slots.cpp \
	src/launcher.cpp \
	src/refresh_worker.cpp \
	src/worker_sql.cpp \
	src/database_commands.cpp

# The SQL scripts, installed next to s3scan_jobs.control: the install script of the current
# version (what CREATE EXTENSION s3scan_jobs runs); the 1.0 install script and every update
# script (CREATE EXTENSION ... VERSION and ALTER EXTENSION ... UPDATE of older versions); the
# script that moves an existing scanner database into the extension. A new version adds its
# install script, replaces the previous one's, and adds its update script.
S3SCAN_DATA = \
	s3scan_jobs--1.4.sql \
	s3scan_jobs--1.0.sql \
	s3scan_jobs--1.0--1.1.sql \
	s3scan_jobs--1.1--1.2.sql \
	s3scan_jobs--1.2--1.3.sql \
	s3scan_jobs--1.3--1.4.sql \
	s3scan_jobs_migrate.sql
