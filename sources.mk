# The one list of C++ sources, read by both the Makefile (PGXS) and CMakeLists.txt.
S3SCAN_SOURCES = \
	src/s3scan_jobs.cpp \
	src/job_status.cpp \
	src/refresh.cpp \
	src/pinned_sql.cpp \
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
