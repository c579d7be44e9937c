# The per-job counters through crash recovery, two-phase commit, the replica role and real
# logical replication (issue 9). Every check compares with an independent recount of the base
# tables in the same snapshot (S3ScanCounters.pm) and with verify_job_counters():
# (a) an immediate stop (no shutdown checkpoint: recovery replays the WAL) in the middle of the
#     random pgbench workload, twice, the second time also with a large fold in flight: after
#     restart the counts are exact, before and after the worker folds;
# (b) two-phase commit: a prepared transaction's inserts, updates, moves, deletes and findings
#     are invisible (and counted nowhere) until COMMIT PREPARED, also across an immediate stop,
#     and gone after ROLLBACK PREPARED; the writer's own reads inside the transaction are exact;
#     a fold does not wait for a prepared transaction; a prepared TRUNCATE;
# (c) session_replication_role = replica in a normal session (the row-level triggers count,
#     the statement-level ones stand aside): INSERT, COPY, ON CONFLICT, UPDATE, DELETE, TRUNCATE;
# (d) a publisher and a subscriber with the extension (subscription on jobs, job_objects and
#     findings only): the initial copy, single statements, the pgbench workload, TRUNCATE of each
#     table and of jobs with CASCADE; after catch-up the subscriber's counters are exact and its
#     recount equals the publisher's.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use Time::HiRes qw(time usleep);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;
use S3ScanCounters;

my $db    = 'work';
my $njobs = 6;
my $J     = job_uuid_sql('j');
my $dir   = PostgreSQL::Test::Utils::tempdir;

my $common = "s3scan_jobs.database = '$db'\n"
  . "s3scan_jobs.refresh_interval = '1s'\n"
  . "s3scan_jobs.fold_interval = '100ms'\n"
  . "deadlock_timeout = '100ms'\n";

sub initial_data
{
	my ($node) = @_;
	$node->safe_psql(
		$db, qq{
CREATE TABLE tap_mismatch (at timestamptz DEFAULT clock_timestamp(), job_id uuid, what text,
                           seen text, counted text);
INSERT INTO jobs (job_id, bucket, prefix, execution_arn)
SELECT $J, 'b', 'p/', 'arn:' || j FROM generate_series(1, $njobs) j;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
SELECT $J, 'b', 'k' || g, CASE WHEN g % 10 = 0 THEN NULL ELSE 'e' END,
       (ARRAY['queued','processing','succeeded','failed'])[1 + (g + j) % 4],
       now() - (g % 500) * interval '1 second'
FROM generate_series(1, $njobs) j, generate_series(1, 600 * j) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT $J, 'b', 'k' || g, 'e', 'email', '***', 1000 + j
FROM generate_series(1, $njobs) j, generate_series(1, 50 * j) g;
ANALYZE;
});
}

# pgbench with the random workload in the background.
sub start_pgbench
{
	my ($node, $seconds, $clients, $args) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			$node->installed_command('pgbench'), '-n', '-M', 'simple', '-c', $clients, '-j', '2',
			'-T', $seconds, '--max-tries=20', @$args, $node->connstr($db)
		],
		'>', \$out, '2>', \$err, IPC::Run::timeout($seconds + 120));
	return { h => $h, out => \$out, err => \$err };
}

sub finish_pgbench
{
	my ($p) = @_;
	eval { $p->{h}->finish; 1 } or do { $p->{h}->kill_kill; };
	my ($status) = $p->{h}->full_results;
	return ($status >> 8) || ($status & 127);
}

sub committed
{
	my ($node) = @_;
	return $node->safe_psql($db,
		"SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()");
}

# --- (a) immediate stop in the middle of writes ------------------------------------------------

my $node = new_s3scan_node(
	'crash',
	preload => 1,
	conf    => $common . "max_prepared_transactions = 5\nmax_connections = 40\n");
$node->start;
$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, 'CREATE EXTENSION s3scan_jobs');
initial_data($node);
counters_exact($node, $db, 'before the crashes');
my @args = write_workload($dir, jobs => $njobs, keys => 3600, churn => 8, check => 4);

for my $round (1 .. 2)
{
	my $big_fold;
	if ($round == 2)
	{
		# Deltas pile up (no fold between refreshes, refreshes an hour apart) ...
		$node->append_conf('postgresql.conf',
			"s3scan_jobs.fold_interval = 0\ns3scan_jobs.refresh_interval = '1h'\n");
		$node->reload;
	}
	my $before = committed($node);
	my $p      = start_pgbench($node, 60, 5, \@args);
	ok( defined wait_for_cond(
			sub { committed($node) - $before > 1500 },
			60, 'writes'),
		"round $round: the workload is writing");
	if ($round == 2)
	{
		# ... and are folded by a session that the stop interrupts.
		$big_fold = $node->background_psql($db, on_error_stop => 0);
		cmp_ok($node->safe_psql($db, 'SELECT count(*) FROM job_counter_deltas'),
			'>', 100, 'round 2: many pending deltas');
		$big_fold->{stdin} .= "SELECT fold_job_counters();\n";
		$big_fold->{run}->pump_nb;
		usleep(20_000);
	}
	$node->stop('immediate');
	my $rc = finish_pgbench($p);
	ok($rc != 0 && ${ $p->{err} } =~ /server closed the connection|terminat|connection/,
		"round $round: pgbench was cut off by the stop")
	  or diag("exit $rc, stderr: ${ $p->{err} }");
	if ($big_fold)
	{
		eval { $big_fold->{run}->finish; 1 } or $big_fold->{run}->kill_kill;
		$node->append_conf('postgresql.conf',
			"s3scan_jobs.fold_interval = '100ms'\ns3scan_jobs.refresh_interval = '1s'\n");
	}
	$node->start;
	counters_exact($node, $db, "round $round: after crash recovery");
	is($node->safe_psql($db, 'SELECT count(*) FROM tap_mismatch'),
		'0', "round $round: the pgbench reader saw no difference before the stop")
	  or diag($node->safe_psql($db, 'SELECT * FROM tap_mismatch ORDER BY at LIMIT 10'));
	ok(defined wait_for($node, $db, 'SELECT count(*) = 0 FROM job_counter_deltas'),
		"round $round: the worker folds after recovery");
	counters_exact($node, $db, "round $round: after recovery, folded");
}

# --- (b) two-phase commit ----------------------------------------------------------------------

my ($A, $B, $C) = (job_uuid_sql(1), job_uuid_sql(2), job_uuid_sql(3));
$node->safe_psql($db,
	"INSERT INTO jobs (job_id, bucket) SELECT $J, 'b' FROM generate_series(1, 3) j ON CONFLICT DO NOTHING"
);
my $baseline = counters_exact($node, $db, '2PC: baseline');

sub twopc_writes
{
	my ($tag) = @_;
	return qq{
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT $A, 'b', '$tag-' || g, 'e', 'queued' FROM generate_series(1, 120) g;
UPDATE job_objects SET status = 'succeeded' WHERE job_id = $A AND key LIKE 'k1%';
UPDATE job_objects SET job_id = $B, key = key || '-$tag' WHERE job_id = $A AND key LIKE 'k2%';
DELETE FROM job_objects WHERE job_id = $B AND key LIKE 'k3%';
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT $B, 'b', '$tag-' || g, 'e', 'ssn', '***', 1 FROM generate_series(1, 33) g;
DELETE FROM findings WHERE job_id = $A AND key LIKE 'k4%';
};
}
my $s1 = $node->background_psql($db);
$s1->query_safe("BEGIN;\n" . twopc_writes('p1'));
my ($own) = counter_diffs($node, $db, in_txn => 1, run => sub { $s1->query_safe($_[0]) });
ok(!@$own, '2PC: inside the writing transaction, its own reads are exact')
  or diag(join("\n", @$own));
$s1->query_safe("PREPARE TRANSACTION 'p1'");
$s1->quit;
is(counters_exact($node, $db, '2PC: p1 prepared'), $baseline,
	'2PC: p1 prepared: nothing of it is counted');
my ($r, $o, $e) = psql_result($node, $db, 'SELECT fold_job_counters()', timeout => 30);
is($r, 0, '2PC: a fold does not wait for the prepared transaction') or diag($e);
$node->stop('immediate');
$node->start;
is($node->safe_psql($db, 'SELECT gid FROM pg_prepared_xacts'), 'p1', '2PC: p1 survives the stop');
is(counters_exact($node, $db, '2PC: p1 prepared, after recovery'),
	$baseline, '2PC: after recovery, p1 still counted nowhere');
$node->safe_psql($db, "COMMIT PREPARED 'p1'");
my $after_p1 = counters_exact($node, $db, '2PC: after COMMIT PREPARED');
isnt($after_p1, $baseline, '2PC: the committed changes are counted');

my $s2 = $node->background_psql($db);
$s2->query_safe("BEGIN;\n" . twopc_writes('p2') . "\nDELETE FROM jobs WHERE job_id = $C;");
$s2->query_safe("PREPARE TRANSACTION 'p2'");
$s2->quit;
is(counters_exact($node, $db, '2PC: p2 prepared'), $after_p1, '2PC: p2 prepared: not counted');
$node->safe_psql($db, "ROLLBACK PREPARED 'p2'");
is(counters_exact($node, $db, '2PC: after ROLLBACK PREPARED'),
	$after_p1, '2PC: rolled back: not counted');

my $s3 = $node->background_psql($db);
$s3->query_safe(
	qq{BEGIN;
TRUNCATE findings;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT $A, 'b', 'after-truncate-' || g, 'e', 'ssn', '***', 1 FROM generate_series(1, 7) g;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT $C, 'b', 'p3-' || g, 'e', 'failed' FROM generate_series(1, 9) g;
PREPARE TRANSACTION 'p3';});
$s3->quit;
$node->safe_psql($db, "COMMIT PREPARED 'p3'");
my $after_p3 = counters_exact($node, $db, '2PC: a prepared TRUNCATE, committed');
like($after_p3, qr/^dddddddd-0000-4000-8000-000000000001\|\d+\|\d+\|\d+\|\d+\|\d+\|7\|/m,
	'2PC: job 1 has the 7 findings inserted after the TRUNCATE');

# --- (c) session_replication_role = replica in a normal session -------------------------------

my @replica = (
	"INSERT INTO job_objects (job_id, bucket, key, etag, status)
	 SELECT $A, 'b', 'replica-' || g, 'e', (ARRAY['queued','processing','succeeded','failed'])[1 + g % 4]
	 FROM generate_series(1, 40) g",
	"COPY job_objects (job_id, bucket, key, etag, status) FROM PROGRAM
	 'for i in 1 2 3 4 5; do printf \"dddddddd-0000-4000-8000-000000000002\\tb\\tcopy-replica-%s\\te\\tprocessing\\n\" \$i; done'",
	"INSERT INTO job_objects (job_id, bucket, key, etag, status)
	 SELECT $A, 'b', 'replica-' || g, 'e', 'failed' FROM generate_series(30, 50) g
	 ON CONFLICT ON CONSTRAINT job_objects_natural_key DO UPDATE SET status = EXCLUDED.status",
	"UPDATE job_objects SET status = 'succeeded' WHERE job_id = $A AND key LIKE 'replica-1%'",
	"UPDATE job_objects SET job_id = $B WHERE job_id = $A AND key LIKE 'replica-2%'",
	"DELETE FROM job_objects WHERE job_id = $B AND key LIKE 'copy-replica-%'",
	"INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
	 SELECT $B, 'b', 'replica-' || g, 'e', 'ssn', '***', 2 FROM generate_series(1, 12) g",
	"TRUNCATE findings",
	"INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
	 SELECT $A, 'b', 'replica-' || g, 'e', 'ssn', '***', 3 FROM generate_series(1, 4) g");
for my $stmt (@replica)
{
	(my $short = $stmt) =~ s/\s+/ /g;
	$short = substr($short, 0, 60);
	$node->safe_psql($db, "BEGIN; SET LOCAL session_replication_role = replica; $stmt; COMMIT;");
	counters_exact($node, $db, "replica role: $short");
}
# The role changing inside one transaction.
$node->safe_psql(
	$db, qq{BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE job_objects SET status = 'queued' WHERE job_id = $A AND key LIKE 'k5%';
SET LOCAL session_replication_role = origin;
UPDATE job_objects SET status = 'processing' WHERE job_id = $A AND key LIKE 'k5%';
SET LOCAL session_replication_role = local;
DELETE FROM job_objects WHERE job_id = $A AND key LIKE 'k6%';
COMMIT;});
counters_exact($node, $db, 'replica, origin and local roles in one transaction');
$node->stop;

# --- (d) logical replication -------------------------------------------------------------------

my $pub = new_s3scan_node('pub', preload => 1, allows_streaming => 'logical',
	conf => $common . "max_connections = 40\n");
my $sub = new_s3scan_node('sub', preload => 1, conf => $common);
$pub->start;
$sub->start;
for my $n ($pub, $sub)
{
	$n->safe_psql('postgres', "CREATE DATABASE $db");
	$n->safe_psql($db, 'CREATE EXTENSION s3scan_jobs');
}
initial_data($pub);
$pub->safe_psql($db, 'CREATE PUBLICATION counters_pub FOR TABLE jobs, job_objects, findings');
my $pub_conn = $pub->connstr() . " dbname=$db";
$sub->safe_psql($db,
	"CREATE SUBSCRIPTION counters_sub CONNECTION '$pub_conn' PUBLICATION counters_pub");
$sub->wait_for_subscription_sync($pub, 'counters_sub', $db);

sub replicated_exact
{
	my ($label) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	$pub->wait_for_catchup('counters_sub');
	my $on_pub = counters_exact($pub, $db, "publisher, $label");
	my $on_sub = counters_exact($sub, $db, "subscriber, $label");
	is($on_sub, $on_pub, "$label: the subscriber's recount equals the publisher's");
}
replicated_exact('initial copy');
cmp_ok($sub->safe_psql($db, 'SELECT count(*) FROM job_objects'), '>', 1000,
	'the initial copy brought the objects');

$pub->safe_psql(
	$db, qq{
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT $A, 'b', 'lr-' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'e' END, 'queued'
FROM generate_series(1, 200) g;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT $A, 'b', 'lr-' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'e' END, 'failed'
FROM generate_series(150, 260) g ON CONFLICT DO NOTHING;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT $A, 'b', 'lr-' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'e' END, 'succeeded'
FROM generate_series(250, 300) g
ON CONFLICT ON CONSTRAINT job_objects_natural_key DO UPDATE SET status = EXCLUDED.status;
UPDATE job_objects SET status = 'processing' WHERE job_id = $B AND key LIKE 'k1%';
UPDATE job_objects SET last_error = 'noop' WHERE job_id = $B AND key LIKE 'k2%';
UPDATE job_objects SET job_id = $C, key = key || '-moved' WHERE job_id = $B AND key LIKE 'k3%';
DELETE FROM job_objects WHERE job_id = $A AND key LIKE 'k4%';
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT $C, 'b', 'lr-' || g, 'e', 'iban', '***', 7 FROM generate_series(1, 60) g;
DELETE FROM findings WHERE job_id = ${\ job_uuid_sql(4)} AND key LIKE 'k1%';
DELETE FROM jobs WHERE job_id = ${\ job_uuid_sql(5)};
BEGIN;
UPDATE job_objects SET status = 'failed' WHERE job_id = $A;
SAVEPOINT s;
DELETE FROM job_objects WHERE job_id = $C;
ROLLBACK TO SAVEPOINT s;
INSERT INTO jobs (job_id, bucket) VALUES (${\ job_uuid_sql(5)}, 'b');
COMMIT;
BEGIN;
DELETE FROM job_objects;
ROLLBACK;
});
$pub->safe_psql($db,
	"COPY job_objects (job_id, bucket, key, etag, status) FROM PROGRAM
	 'for i in 1 2 3 4 5 6; do printf \"dddddddd-0000-4000-8000-000000000005\\tb\\tcopy-%s\\te\\tqueued\\n\" \$i; done'"
);
replicated_exact('single statements');

mkdir "$dir/pub" or die;
my $p = start_pgbench($pub, 12, 4,
	[ write_workload("$dir/pub", jobs => $njobs, keys => 3600, churn => 8, check => 0) ]);
is(finish_pgbench($p), 0, 'pgbench on the publisher') or diag(${ $p->{err} });
replicated_exact('the pgbench workload');

# (The workload deletes and creates jobs at random: what follows writes to three jobs that exist.)
my $three_jobs = "(SELECT job_id, row_number() OVER (ORDER BY job_id) AS j FROM jobs ORDER BY job_id LIMIT 3) t";
$pub->safe_psql($db, 'TRUNCATE findings');
$pub->safe_psql($db,
	"INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
	 SELECT t.job_id, 'b', 'after-' || g, 'e', 'ssn', '***', t.j FROM $three_jobs, generate_series(1, 11) g");
replicated_exact('TRUNCATE findings');
$pub->safe_psql($db, 'TRUNCATE job_objects');
$pub->safe_psql($db,
	"INSERT INTO job_objects (job_id, bucket, key, etag, status)
	 SELECT t.job_id, 'b', 'after-' || g, 'e', 'succeeded' FROM $three_jobs, generate_series(1, 13) g");
replicated_exact('TRUNCATE job_objects');
$pub->safe_psql($db, 'TRUNCATE jobs CASCADE');
$pub->safe_psql(
	$db, qq{
INSERT INTO jobs (job_id, bucket) SELECT $J, 'b' FROM generate_series(1, 2) j;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT $J, 'b', 'fresh-' || g, 'e', 'processing' FROM generate_series(1, 2) j, generate_series(1, 17) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT $J, 'b', 'fresh-' || g, 'e', 'ssn', '***', j FROM generate_series(1, 2) j, generate_series(1, 5) g;
});
replicated_exact('TRUNCATE jobs CASCADE');
ok(defined wait_for($sub, $db, 'SELECT count(*) = 0 FROM job_counter_deltas'),
	'the subscriber\'s worker folds');
counters_exact($sub, $db, 'subscriber, folded');
is($sub->safe_psql($db, 'SELECT count(*) FROM jobs'), '2', 'the subscriber has the two new jobs');

$sub->stop;
$pub->stop;
done_testing();
