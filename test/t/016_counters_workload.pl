# The per-job counters under a randomized concurrent workload (issue 9): 6 pgbench clients for
# S3SCAN_COUNTERS_SECONDS (default 60) run object batches with ON CONFLICT conflicts (with and
# without a target, and upserts), per-object and multi-row status updates, no-op updates,
# updates that move objects and findings to another job, deletes, findings batches that conflict
# across jobs, transactions that roll back, nested savepoints rolled back and released, job
# deletes (cascading) and re-creates, and a self-checking reader; the test itself COPYs objects
# and findings in between. The refresh worker folds every 100 ms and refreshes every second.
#
# Checked against an independent recount of the base tables (S3ScanCounters.pm), never against
# hard-coded totals:
# - during the load, about once a second, in one REPEATABLE READ snapshot: job_progress_live,
#   job_summary, job_status(id, true) and job_counters + pending job_counter_deltas equal the
#   recount, and verify_job_counters() finds nothing; the pgbench reader does the same for one
#   job per transaction and records any difference;
# - the deltas were folded during the load (pending deltas stay a small part of those written)
#   and the worker folds the rest without help;
# - after the load: the same checks, job_progress after a refresh, and that the checks do fail
#   on a wrong counter or a stray delta (then repaired by repair_job_counters());
# - s3scan_jobs.fold_interval: folding happens between refreshes, and 0 leaves it to refreshes.
#
# The load deletes and re-creates jobs at random, so it may leave any job deleted or empty.
# Nothing writes after it; each check after the load that needs a job with rows writes them
# itself first (own_rows(): it re-creates job 1 if needed and adds objects in every status and
# findings under keys of its own), so none depends on what the load left behind.

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

my $seconds = $ENV{S3SCAN_COUNTERS_SECONDS} // 60;
my $njobs   = 8;
my $nkeys   = 3000;
my $db      = 'work';

my $node = new_s3scan_node(
	'counters',
	preload => 1,
	conf    => "s3scan_jobs.database = '$db'\n"
	  . "s3scan_jobs.refresh_interval = '1s'\n"
	  . "s3scan_jobs.fold_interval = '100ms'\n"
	  . "max_connections = 40\n"
	  . "deadlock_timeout = '100ms'\n"
	  . "synchronous_commit = off\n");
$node->start;
$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, 'CREATE EXTENSION s3scan_jobs');
is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 's3scan_jobs'"),
	'1.4', 'the extension is at version 1.4');
is($node->safe_psql($db, 'SELECT counter_maintenance()'), 't', 'counter maintenance is on');

my $J = job_uuid_sql('j');
$node->safe_psql(
	$db, qq{
CREATE TABLE tap_mismatch (at timestamptz DEFAULT clock_timestamp(), job_id uuid, what text,
                           seen text, counted text);
INSERT INTO jobs (job_id, bucket, prefix, execution_arn)
SELECT $J, 'b', 'p/', 'arn:' || j FROM generate_series(1, $njobs) j;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
SELECT $J, 'b', 'k' || g, CASE WHEN g % 10 = 0 THEN NULL ELSE 'e' END,
       (ARRAY['queued','processing','succeeded','failed'])[1 + (g + j) % 4],
       now() - (g % 977) * interval '1 second'
FROM generate_series(1, $njobs) j, generate_series(1, $nkeys / 2) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT $J, 'b', 'k' || g, 'e', 'email', '***', 1000 + j
FROM generate_series(1, $njobs) j, generate_series(1, 100 * j) g;
ANALYZE;
});
ok( defined wait_for(
		$node, $db,
		"SELECT count(*) > 0 FROM refresh_history WHERE origin = 'worker' AND outcome = 'refreshed'"),
	'the worker refreshes');
ok(defined wait_for($node, $db, 'SELECT count(*) = 0 FROM job_counter_deltas'),
	'the worker folds the initial load');
counters_exact($node, $db, 'before the load');

# --- the load ------------------------------------------------------------------------------------

my $dir  = PostgreSQL::Test::Utils::tempdir;
my @args = write_workload($dir, jobs => $njobs, keys => $nkeys, churn => 8, check => 6);
my $stats_before = $node->safe_psql($db,
	"SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'job_counter_deltas'");
my $log_offset = log_size($node);
my ($out, $err) = ('', '');
my $pgbench = IPC::Run::start(
	[
		$node->installed_command('pgbench'), '-n', '-M', 'simple', '-c', '6', '-j', '2',
		'-T', $seconds, '--max-tries=20', '--failures-detailed', @args, $node->connstr($db)
	],
	'>', \$out, '2>', \$err);

# Meanwhile: COPY batches, and the checks in one snapshot, about once a second.
my ($snapshots, $bad_snapshots, $verify_bad, $copies) = (0, 0, 0, 0);
my (@first_bad, @pending, %counter_states);
my ($t_copy, $t_diffs, $t_verify) = (0, 0, 0);
my $start = time();
while ($pgbench->pumpable && time() - $start < $seconds + 60)
{
	$pgbench->pump_nb;
	my $iter = $snapshots;
	my $j    = 1 + $iter % $njobs;
	open my $fh, '>', "$dir/copy.csv" or die;
	for my $g (1 .. 40)
	{
		my $etag = $g % 7 == 0 ? '' : 'e';
		my $st   = (qw(queued processing succeeded failed))[ ($g + $iter) % 4 ];
		print $fh "dddddddd-0000-4000-8000-"
		  . sprintf('%012d', $j)
		  . ",b,copy-$iter-$g,$etag,$st\n";
	}
	close $fh;
	open $fh, '>', "$dir/copyf.csv" or die;
	print $fh "dddddddd-0000-4000-8000-" . sprintf('%012d', $j) . ",b,copy-$iter-1,e,copy,***,$_\n"
	  for 1 .. 5;
	close $fh;
	my $t0 = time();
	$node->safe_psql(
		$db, qq{
DO \$\$
BEGIN
  PERFORM pg_advisory_xact_lock_shared($j);
  IF EXISTS (SELECT 1 FROM jobs WHERE job_id = ${\ job_uuid_sql($j)}) THEN
    COPY job_objects (job_id, bucket, key, etag, status) FROM '$dir/copy.csv' (FORMAT csv);
    COPY findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
      FROM '$dir/copyf.csv' (FORMAT csv);
  END IF;
END
\$\$;});
	$copies++;
	$t_copy += time() - $t0;

	$t0 = time();
	my ($diffs) = counter_diffs($node, $db);
	$t_diffs += time() - $t0;
	$snapshots++;
	if (@$diffs)
	{
		$bad_snapshots++;
		push @first_bad, @$diffs if $bad_snapshots <= 2;
	}
	$t0 = time();
	my ($v, $p, $state) = split /\x1e/, $node->safe_psql(
		$db, q{
SELECT coalesce(string_agg(concat_ws('|', job_id, item, maintained, counted), E'\n'), '')
       || E'\x1e' || (SELECT count(*) FROM job_counter_deltas)
       || E'\x1e' || (SELECT md5(string_agg(c::text, ',' ORDER BY job_id)) FROM job_counters c)
FROM verify_job_counters()});
	$t_verify += time() - $t0;
	if ($v ne '')
	{
		$verify_bad++;
		push @first_bad, "verify_job_counters() during the load:\n$v" if $verify_bad <= 2;
	}
	push @pending, $p;
	$counter_states{$state} = 1;
	usleep(200_000);
}
$pgbench->finish;
my $elapsed = time() - $start;
note(sprintf("load ran %.1fs; time spent in COPY %.1fs, recount comparisons %.1fs, verify %.1fs",
		$elapsed, $t_copy, $t_diffs, $t_verify));
note("pgbench output:\n$out");

ok($pgbench->result == 0, 'pgbench ran to the end') or diag("stderr:\n$err");
unlike($err, qr/aborted|ERROR/, 'no pgbench client was aborted by an error');
my $counts = pgbench_script_counts($out);
my @scripts = map { /(\w+)\.sql\@/ ? $1 : () } @args;
is(scalar(grep { ($counts->{$_} // 0) > 0 } @scripts),
	scalar(@scripts), 'every script of the workload ran')
  or diag(explain $counts);
my ($failed) = $out =~ /number of failed transactions: (\d+)/;
note("transactions failed after retries (deadlocks): " . ($failed // '?'));
my @errors = grep { !/deadlock detected/ } log_lines($node, $log_offset, qr/ERROR|FATAL|PANIC/);
is(scalar(@errors), 0, 'no error in the server log but deadlocks (retried)')
  or diag(join("\n", @errors[ 0 .. ($#errors > 9 ? 9 : $#errors) ]));

cmp_ok($snapshots, '>=', 10, "$snapshots snapshots checked during the load ($copies COPY batches)");
is($bad_snapshots, 0, 'in every snapshot during the load, the readers and the counters equal the recount')
  or diag(join("\n", @first_bad));
is($verify_bad, 0, 'verify_job_counters() found nothing during the load');
is($node->safe_psql($db, 'SELECT count(*) FROM tap_mismatch'),
	'0', 'the pgbench reader saw no difference in its snapshots')
  or diag($node->safe_psql($db, 'SELECT * FROM tap_mismatch ORDER BY at LIMIT 10'));

# Folding happened during the load, not only at its end.
ok(defined wait_for($node, $db, 'SELECT count(*) = 0 FROM job_counter_deltas'),
	'the worker folds every pending delta after the load, without help');
my $written;
wait_for_cond(
	sub {
		$node->safe_psql($db, 'SELECT pg_stat_clear_snapshot()');
		$written = $node->safe_psql($db,
			"SELECT n_tup_ins - $stats_before FROM pg_stat_user_tables WHERE relname = 'job_counter_deltas'"
		);
		return $written > 0;
	},
	30,
	'delta statistics');
my ($max_pending) = sort { $b <=> $a } @pending;
note("delta rows written during the load: $written; pending when sampled: max $max_pending, "
	  . "samples: @pending");
cmp_ok($max_pending * 10, '<', $written,
	'pending deltas stayed under a tenth of those written: they were folded during the load');
cmp_ok(scalar(keys %counter_states), '>=', $snapshots / 2,
	'job_counters changed between most samples');

# --- after the load ------------------------------------------------------------------------------

my $j1     = job_uuid_sql(1);
my $j1_txt = 'dddddddd-0000-4000-8000-000000000001';

# Job $n (re-created when the load left it deleted) gets $per objects in each of the four statuses
# and $nf findings, under keys of the test's own ("tap-$tag-..."), in one transaction.
sub own_rows
{
	my ($n, $tag, $per, $nf) = @_;
	my $job = job_uuid_sql($n);
	$node->safe_psql(
		$db, qq{
BEGIN;
INSERT INTO jobs (job_id, bucket, prefix) VALUES ($job, 'b', 'p/') ON CONFLICT DO NOTHING;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT $job, 'b', 'tap-$tag-' || s || '-' || g, CASE WHEN g % 2 = 0 THEN NULL ELSE 'e' END, s
FROM unnest(ARRAY['queued','processing','succeeded','failed']) s, generate_series(1, $per) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT $job, 'b', 'tap-$tag', 'e', 'tap', '***', g FROM generate_series(1, $nf) g;
COMMIT;});
	return;
}

# The counts of job 1 (total, queued, processing, succeeded, failed, findings) as the real-time
# read returns them, as a list.
sub j1_counts
{
	return split /\|/, $node->safe_psql($db,
		"SELECT total_objects, queued_count, processing_count, succeeded_count, failed_count,
                total_findings FROM job_status($j1, true)");
}

# The recount's row of job 1 (job_id to total_findings) and job 1's row of job_counters alone.
sub j1_recount
{
	my ($line) = grep { /^\Q$j1_txt\E\|/ } split /\n/, $node->safe_psql($db, recount_sql());
	return join('|', (split /\|/, $line // '', -1)[ 0 .. 6 ]);
}

sub j1_counter_row
{
	return $node->safe_psql($db,
		"SELECT concat_ws('|', job_id, total_objects, queued_count, processing_count,
                          succeeded_count, failed_count, total_findings)
         FROM job_counters WHERE job_id = $j1");
}

# Rows changed by an UPDATE (run as "WITH u AS (UPDATE ... RETURNING 1) SELECT count(*) FROM u").
sub rows_updated
{
	my ($update) = @_;
	return $node->safe_psql($db, "WITH u AS ($update RETURNING 1) SELECT count(*) FROM u");
}

counters_exact($node, $db, 'after the load, folded');

# Whatever the load left of job 1 (nothing, or any rows), the test's own rows are counted exactly:
# the real-time counts move by what it adds, and the checks below see every status and findings.
$node->safe_psql($db,
	"INSERT INTO jobs (job_id, bucket, prefix) VALUES ($j1, 'b', 'p/') ON CONFLICT DO NOTHING");
my @before = j1_counts();
own_rows(1, 'after', 3, 2);
my @after = j1_counts();
is(join('|', map { $after[$_] - $before[$_] } 0 .. 5),
	join('|', 4 * 3, 3, 3, 3, 3, 2),
	'job 1, as the load left it: job_status(id, true) counts the rows the test adds exactly')
  or diag("before: @before; after: @after");
counters_exact($node, $db, "after the load, with the test's own rows");

ok(defined wait_for($node, $db, "SELECT outcome = 'refreshed' FROM refresh_job_progress()"),
	'a refresh');
is(matview_diffs($node, $db), '', 'job_progress after the refresh equals the recount');
my @rows = split /\n/, $node->safe_psql($db, recount_sql());
is( $node->safe_psql(
		$db, "SELECT s.job_id, s.total_objects, s.queued_count, s.processing_count, s.succeeded_count,
       s.failed_count, s.total_findings, s.progress_percent
FROM jobs j CROSS JOIN LATERAL job_status(j.job_id) s WHERE s.data_source = 'cached' ORDER BY 1"),
	join("\n", map { join('|', (split /\|/, $_, -1)[ 0 .. 7 ]) } @rows),
	'job_status() from the cache equals the recount');

# --- the checks can fail -------------------------------------------------------------------------

# Job 1 exists and has objects and findings (so a counter row to make wrong), whatever the load did.
own_rows(1, 'tamper', 2, 2);
$node->safe_psql($db,
	"INSERT INTO job_counter_deltas (job_id, total_objects, queued_count, processing_count,
        succeeded_count, failed_count, total_findings, last_object_update_recheck)
     VALUES ($j1, 1, 1, 0, 0, 0, 0, false)");
my ($diffs) = counter_diffs($node, $db);
ok(scalar(@$diffs) >= 2, 'a stray delta: the recount comparison finds the difference');
isnt(verify_rows($node, $db), '', 'a stray delta: verify_job_counters() finds it');
$node->safe_psql($db, 'SELECT fold_job_counters()');
isnt(verify_rows($node, $db), '', 'a stray delta, folded: verify_job_counters() finds it');
is($node->safe_psql($db, "SELECT repair_job_counters($j1)"), '1', 'repair_job_counters(job)');
counters_exact($node, $db, 'after repairing the stray delta');
my $changed = rows_updated(
	"UPDATE job_counters SET failed_count = failed_count + 2, total_findings = total_findings - 1
     WHERE job_id = $j1");
die "job 1 has objects and findings, yet no row of job_counters: $changed rows changed"
  unless $changed eq '1';
($diffs) = counter_diffs($node, $db);
ok(scalar(@$diffs) >= 2, 'a wrong counter: the recount comparison finds the difference');
my $v = verify_rows($node, $db, $j1_txt);
ok(scalar(split /\n/, $v) == 2 && $v =~ /fail/ && $v =~ /finding/,
	'a wrong counter: verify_job_counters(job) returns one row per wrong column')
  or diag($v);
my $with_rows = $node->safe_psql($db,
	'SELECT count(*) FROM (SELECT job_id FROM job_objects UNION SELECT job_id FROM findings) x');
cmp_ok($node->safe_psql($db, 'SELECT repair_job_counters()'), '>=', $with_rows,
	'repair_job_counters() of every job: at least every job with rows rebuilt');
counters_exact($node, $db, 'after repairing the wrong counter');

# --- s3scan_jobs.fold_interval -------------------------------------------------------------------

# Objects of the test's own in job 1, in every status: each status update below changes some of
# them (and so makes deltas), whatever the load left.
own_rows(1, 'fold', 4, 0);
$node->append_conf('postgresql.conf', "s3scan_jobs.refresh_interval = '1h'\n");
$node->reload;
ok(defined wait_for($node, $db, "SHOW s3scan_jobs.refresh_interval", '1h'), 'refresh every hour');
# Let a refresh that was due run, then no more: whatever folds next is the fold cadence.
ok(defined wait_for($node, $db, "SELECT state = 'idle' FROM refresh_worker_status WHERE database = '$db'"),
	'the worker is idle');
my $hist = $node->safe_psql($db, 'SELECT count(*) FROM refresh_history');
my $moved = rows_updated(
	"UPDATE job_objects SET status = 'succeeded'
     WHERE job_id = $j1 AND key LIKE 'tap-fold-%' AND status <> 'succeeded'");
die "no object of the test's own changed status: $moved" unless $moved > 0;
ok(defined wait_for($node, $db, 'SELECT count(*) = 0 FROM job_counter_deltas'),
	'with refreshes an hour apart, the worker still folds (fold_interval)');
is(j1_counter_row(), j1_recount(),
	"... job_counters alone (nothing pending) counts the $moved objects the update changed");
is($node->safe_psql($db, 'SELECT count(*) FROM refresh_history'), $hist, '... and did not refresh');

$node->append_conf('postgresql.conf', "s3scan_jobs.fold_interval = 0\n");
$node->reload;
ok(defined wait_for($node, $db, "SHOW s3scan_jobs.fold_interval", '0'), 'fold_interval = 0');
$moved = rows_updated(
	"UPDATE job_objects SET status = 'failed'
     WHERE job_id = $j1 AND key LIKE 'tap-fold-%' AND status <> 'failed'");
die "no object of the test's own changed status: $moved" unless $moved > 0;
ok( stays_true(
		sub { $node->safe_psql($db, 'SELECT count(*) > 0 FROM job_counter_deltas') eq 't' },
		3, 'deltas stay pending'),
	'fold_interval = 0: no fold between refreshes');
isnt(j1_counter_row(), j1_recount(), '... job_counters alone does not count the update yet');
counters_exact($node, $db, 'with pending deltas');
$node->safe_psql($db, 'SELECT refresh_job_progress()');
is($node->safe_psql($db, 'SELECT count(*) FROM job_counter_deltas'), '0', 'a refresh folds first');
is(j1_counter_row(), j1_recount(), '... into job_counters');
is(matview_diffs($node, $db), '', 'job_progress equals the recount');
counters_exact($node, $db, 'at the end');

$node->stop;
done_testing();
