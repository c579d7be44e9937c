# The one list of C++ sources, read by both the Makefile (PGXS) and CMakeLists.txt.
S3SCAN_SOURCES = \
	src/module.cpp \
	src/pg_boundary.cpp \
	src/job_status.cpp \
	src/refresh.cpp \
	src/touch_trigger.cpp \
	src/worker_shmem.cpp \
	src/worker.cpp \
	src/worker_sql.cpp
