# The clients' statement mix under load while the worker refreshes every second and is hit by
# faults: 4 pgbench clients run object batches (ON CONFLICT DO NOTHING), per-object status updates,
# findings batches (ON CONFLICT (...) DO NOTHING) and job_status cached and real time, for
# S3SCAN_LOAD_SECONDS (default 60; test/bench/soak.sh runs it for an hour). Meanwhile the test
# SIGTERMs the worker (pg_terminate_backend) and cancels a refresh in the middle. Then: no client
# transaction failed, the server logged no ERROR but the ones the test caused, the worker came
# back, and after a final refresh the cached answer equals the real-time one and the direct counts
# for every job.

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

my $seconds = $ENV{S3SCAN_LOAD_SECONDS} // 60;
my $node    = new_s3scan_node(
	'load',
	preload => 1,
	conf    => "s3scan_jobs.database = 'load'\ns3scan_jobs.refresh_interval = '1s'\n"
	  . "synchronous_commit = off\n");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE load');
$node->safe_psql('load', q{
CREATE EXTENSION s3scan_jobs;
INSERT INTO jobs (job_id, bucket, prefix, execution_arn)
SELECT ('ffffffff-0000-4000-8000-' || lpad(j::text, 12, '0'))::uuid, 'b', 'p/', 'arn:' || j
FROM generate_series(1, 4) j;
-- enough jobs that a refresh takes long enough to be cancelled in the middle (since 1.1 a refresh
-- reads one counter row per job, not the objects)
INSERT INTO jobs (job_id, bucket, prefix)
SELECT ('ffffffff-0000-4000-8000-' || lpad(j::text, 12, '0'))::uuid, 'b', 'idle/'
FROM generate_series(5, 60000) j;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
SELECT ('ffffffff-0000-4000-8000-' || lpad((1 + g % 4)::text, 12, '0'))::uuid, 'b', 'k' || g, 'e',
       (ARRAY['queued','processing','succeeded','failed'])[1 + g % 4], now()
FROM generate_series(1, 200000) g;
ANALYZE;
});

my $job = q{('ffffffff-0000-4000-8000-' || lpad(:j::text, 12, '0'))::uuid};
my $dir = PostgreSQL::Test::Utils::tempdir;
my %scripts = (
	'objects.sql' => qq{\\set j random(1, 4)
\\set k random(1, 400000)
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
SELECT $job, 'b', 'k' || (:k + g), 'e', 'queued', now() FROM generate_series(1, 50) g
ON CONFLICT DO NOTHING;
},
	'update.sql' => qq{\\set j random(1, 4)
\\set k random(1, 200000)
\\set s random(1, 4)
UPDATE job_objects SET status = (ARRAY['queued','processing','succeeded','failed'])[:s], last_error = NULL, updated_at = now()
WHERE job_id = $job AND bucket = 'b' AND key = 'k' || :k AND etag = 'e';
},
	'findings.sql' => qq{\\set j random(1, 4)
\\set k random(1, 200000)
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
SELECT $job, 'b', 'k' || :k, 'e', 'ssn', '***', 'c', g, now() FROM generate_series(1, 20) g
ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
},
	'status.sql' => qq{\\set j random(1, 4)
SELECT * FROM job_status($job);
SELECT * FROM job_status($job, true);
});
for my $f (keys %scripts)
{
	open my $fh, '>', "$dir/$f" or die;
	print $fh $scripts{$f};
	close $fh;
}

my $offset = log_size($node);
my ($out, $err) = ('', '');
my $pgbench = IPC::Run::start(
	[   $node->installed_command('pgbench'), '-n', '-c', '4', '-j', '2', '-T', $seconds,
		'-f', "$dir/objects.sql\@2", '-f', "$dir/update.sql\@10", '-f', "$dir/findings.sql\@2",
		'-f', "$dir/status.sql\@2", $node->connstr('load') ],
	'>', \$out, '2>', \$err);
my $started = time();

# Fault 1: SIGTERM the worker; the launcher starts it again.
usleep(int($seconds * 0.2 * 1_000_000));
my $old = worker_pid($node, 'load');
ok(defined $old, 'the worker runs under load');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($old)");
ok(defined wait_for_cond(sub { my $p = worker_pid($node, 'load'); defined $p && $p != $old }),
	'the worker is back after SIGTERM');

# Fault 2: cancel a refresh in the middle (watch for it from inside the server, cancel at once).
my $cancelled = wait_for_cond(
	sub {
		$node->safe_psql('load', q{
DO $$
DECLARE deadline timestamptz := clock_timestamp() + interval '3 s'; p int;
BEGIN
    LOOP
        SELECT pid INTO p FROM pg_stat_activity
        WHERE backend_type = 's3scan_jobs refresh worker' AND query = 's3scan_jobs: refreshing job_progress'
          AND state = 'active';
        IF p IS NOT NULL THEN PERFORM pg_cancel_backend(p); RETURN; END IF;
        EXIT WHEN clock_timestamp() > deadline;
        PERFORM pg_sleep(0.001);
    END LOOP;
END $$});
		return $node->safe_psql('load', "SELECT count(*) > 0 FROM refresh_history WHERE origin = 'worker'
		    AND outcome = 'failed' AND error = 'canceling statement due to user request'") eq 't';
	},
	$seconds * 0.6,
	'a cancelled refresh');
ok(defined $cancelled, 'a refresh was cancelled in the middle, and recorded as failed');

$pgbench->finish;
my $took = time() - $started;
is($pgbench->result(0), 0, "pgbench ran for ${seconds}s and exited 0") or diag("$out\n$err");
like($out, qr/number of failed transactions: 0 /, 'no client transaction failed');
unlike($out . $err, qr/aborted|ERROR/, 'no client aborted');
my ($tps) = $out =~ /tps = ([\d.]+)/;
note("pgbench: " . ($tps // '?') . " tps over ${took}s");

my @errors = grep { !/canceling statement due to user request|terminating background worker "s3scan_jobs refresh worker" due to administrator command/ }
  log_lines($node, $offset, qr/ERROR:|FATAL:|PANIC:/);
is(scalar(@errors), 0, 'no ERROR in the server log but the ones the test caused') or diag(join("\n", @errors));
ok(defined worker_pid($node, 'load'), 'a worker serves the database at the end');

# The answers agree after a final refresh.
# (the worker may be refreshing at that moment: then this one skips, and is tried again)
ok(defined wait_for($node, 'load', "SELECT outcome = 'refreshed' FROM refresh_job_progress()"),
	'the final refresh refreshed');
my @cols = qw(job_id total_objects queued_count processing_count succeeded_count failed_count
  total_findings progress_percent status);
my $c = join(', ', map { "c.$_" } @cols);
my $r = join(', ', map { "r.$_" } @cols);
is( $node->safe_psql('load', "SELECT count(*) = (SELECT count(*) FROM jobs)
	   FROM jobs j, job_status(j.job_id) c, job_status(j.job_id, true) r
	   WHERE c.data_source = 'cached' AND ($c) IS NOT DISTINCT FROM ($r)"),
	't', 'cached = real time for every job');
is( $node->safe_psql('load', q{
SELECT count(*) = (SELECT count(*) FROM jobs)
FROM jobs j CROSS JOIN LATERAL job_status(j.job_id, true) r
LEFT JOIN (SELECT job_id, count(*) AS n, count(*) FILTER (WHERE status = 'succeeded') AS s
           FROM job_objects GROUP BY job_id) o ON o.job_id = j.job_id
LEFT JOIN (SELECT job_id, count(*) AS n FROM findings GROUP BY job_id) f ON f.job_id = j.job_id
WHERE r.total_objects = coalesce(o.n, 0) AND r.succeeded_count = coalesce(o.s, 0)
  AND r.total_findings = coalesce(f.n, 0)}),
	't', 'and equal to the direct counts');

$node->stop;
done_testing();
