# The refresh worker's VACUUM of job_counter_deltas (after every 2,000 folded delta rows) never
# stops it folding:
# (a) while writers hold the deltas table (ROW EXCLUSIVE) and its last pages are empty after a
#     fold, it does not try to truncate them (TRUNCATE false): a truncation wants ACCESS EXCLUSIVE,
#     and VACUUM retries that for up to 5 s, during which the worker did not fold;
# (b) while another session holds the lock a VACUUM needs (SHARE UPDATE EXCLUSIVE on the deltas,
#     as a manual VACUUM or autovacuum of that table does), it skips the vacuum quietly and goes
#     on folding, and vacuums again once the lock is gone.
# In both, a change made after the vacuum is folded within 2 s, three times in a row.
# (c) Nor does a VACUUM or ANALYZE of job_counters stop the worker folding (1.2): its SHARE UPDATE
#     EXCLUSIVE lock conflicted with the EXCLUSIVE lock on job_counters that folds took to take
#     turns, so every fold was skipped while autovacuum worked on job_counters (over a second at
#     100K jobs). Since 1.2 the turn is a lock on job_counters_lock; a session holding SHARE
#     UPDATE EXCLUSIVE on job_counters stands for the vacuum, and changes are folded within 2 s.
#     A session holding the turn itself still keeps folds out, and they resume once it lets go.
# (d) Nor does a REINDEX of an index a fold reads through (1.4): REINDEX INDEX jobs_pkey in an
#     open transaction holds that index ACCESS EXCLUSIVE, and the fold, which probed only the
#     tables' locks, then waited for it inside its transaction: no fold and no refresh until the
#     REINDEX committed. Now the fold probes the indexes too and skips: the worker waits for no
#     lock meanwhile, and folds as soon as the REINDEX is done.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;
use S3ScanCounters;

my $db = 'work';
my $J  = job_uuid_sql('1');
my $node = new_s3scan_node(
	'vacuum',
	preload => 1,
	conf    => "s3scan_jobs.database = '$db'\n"
	  . "s3scan_jobs.refresh_interval = '1h'\n"
	  . "s3scan_jobs.fold_interval = '100ms'\n"
	  . "autovacuum = off\n");
$node->start;
$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, 'CREATE EXTENSION s3scan_jobs');
$node->safe_psql(
	$db, qq{
INSERT INTO jobs (job_id, bucket) VALUES ($J, 'b');
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT $J, 'b', 'k' || g, 'e', 'queued' FROM generate_series(1, 3000) g;
});
my $no_pending = 'SELECT count(*) = 0 FROM job_counter_deltas';
ok(defined wait_for($node, $db, $no_pending), 'the worker folds');

# 2,500 statements, one delta row each, in one transaction: the next fold takes them all, and the
# worker vacuums after it.
sub burst
{
	my ($status) = @_;
	# One transaction per change: since 1.3 a transaction appends one delta row per job.
	$node->safe_psql($db, qq{DO \$\$ BEGIN FOR i IN 1..2500 LOOP
    UPDATE job_objects SET status = '$status' WHERE job_id = $J AND key = 'k' || i;
    COMMIT;
END LOOP; END \$\$});
}

# A change after the vacuum is folded within 2 s, three times.
sub folds_on
{
	my ($what) = @_;
	for my $i (1 .. 3)
	{
		$node->safe_psql($db, "UPDATE job_objects SET status = 'failed' WHERE job_id = $J AND key = 'k" . (2900 + $i) . "'");
		my $took = wait_for($node, $db, $no_pending, 't', 2);
		ok(defined $took, "$what: change $i folded within 2 s") or return;
	}
}

# --- (a) empty last pages while writers hold the table ------------------------------------------
# Writers hold ROW EXCLUSIVE on the deltas from their first change to their commit; a session
# holding just that lock (no transaction id, no snapshot: the folded rows are dead to everyone)
# stands for them.
$node->safe_psql($db, 'VACUUM (TRUNCATE true) job_counter_deltas');  # (the table's vacuum_truncate is off since 1.2)
is($node->safe_psql($db, "SELECT pg_relation_size('job_counter_deltas')"), '0', '(a) the deltas table starts empty');
my $holder = $node->background_psql($db);
$holder->query_safe('BEGIN; LOCK TABLE job_counter_deltas IN ROW EXCLUSIVE MODE');
burst('succeeded');
ok(defined wait_for($node, $db, $no_pending), '(a) the burst is folded');
folds_on('(a) writers holding the table, its last pages empty');
$holder->query_safe('COMMIT');
$holder->quit;

# --- (b) a lock the VACUUM would wait for ----------------------------------------------------
my $vacuums = "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'job_counter_deltas'::regclass";
my $offset = log_size($node);
my $locker = $node->background_psql($db);
$locker->query_safe('BEGIN; LOCK TABLE job_counter_deltas IN SHARE UPDATE EXCLUSIVE MODE');
my $before = $node->safe_psql($db, $vacuums);
burst('processing');
ok(defined wait_for($node, $db, $no_pending), '(b) the burst is folded');
folds_on('(b) the table locked by another VACUUM');
is($node->safe_psql($db, $vacuums), $before, '(b) the worker skipped its vacuum of the locked table');
unlike(log_since($node, $offset), qr/skipping vacuum/, '(b) quietly (no WARNING in the log)');
$locker->query_safe('COMMIT');
$locker->quit;
burst('queued');
ok(defined wait_for($node, $db, "SELECT ($vacuums) > $before"), '(b) once the lock is gone, the worker vacuums again');

# --- (c) a VACUUM or ANALYZE of job_counters -------------------------------------------------------
my $analyzer = $node->background_psql($db);
$analyzer->query_safe('BEGIN; LOCK TABLE job_counters IN SHARE UPDATE EXCLUSIVE MODE');
folds_on('(c) job_counters locked as a VACUUM or ANALYZE of it locks it');
$analyzer->query_safe('COMMIT');
$analyzer->quit;
# The turn itself, held by another session: no fold until it is released.
my $turn = $node->background_psql($db);
$turn->query_safe('BEGIN; LOCK TABLE job_counters_lock IN EXCLUSIVE MODE');
$node->safe_psql($db, "UPDATE job_objects SET status = 'succeeded' WHERE job_id = $J AND key = 'k2999'");
ok(!defined wait_for($node, $db, $no_pending, 't', 1), '(c) while another session holds the turn, nothing is folded');
$turn->query_safe('COMMIT');
$turn->quit;
ok(defined wait_for($node, $db, $no_pending, 't', 2), '(c) once the turn is free, the change is folded');

# --- (d) a REINDEX of an index the fold reads through ---------------------------------------------
my $worker = worker_pid($node, $db);
ok(defined $worker, '(d) the worker serves the database');
my $reindexer = $node->background_psql($db);
$reindexer->query_safe('BEGIN; REINDEX INDEX jobs_pkey');
# (A status change checks no foreign key, so it needs no index of jobs.)
$node->safe_psql($db, "UPDATE job_objects SET status = 'failed' WHERE job_id = $J AND key = 'k2998'");
my $waits = "SELECT count(*) FROM pg_locks WHERE pid = $worker AND NOT granted";
ok( stays_true(sub { $node->safe_psql($db, $waits) eq '0' }, 3, 'the worker waits for no lock'),
	'(d) during the REINDEX the worker waits for no lock (its folds are skipped)');
is($node->safe_psql($db, 'SELECT count(*) > 0 FROM job_counter_deltas'), 't', '(d) meanwhile the change stays pending');
$reindexer->query_safe('COMMIT');
$reindexer->quit;
ok(defined wait_for($node, $db, $no_pending, 't', 2), '(d) once the REINDEX commits, the change is folded');

counters_exact($node, $db, 'after all cases');

$node->stop;
done_testing();
