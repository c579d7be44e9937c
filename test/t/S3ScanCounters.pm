# Helpers shared by the per-job counter TAP tests (016_counters_workload.pl,
# 017_counters_upgrade_dump.pl, 018_counters_recovery.pl).
#
# The checks never trust a hard-coded total: every comparison is against an
# independent recount of the base tables written here (its own GROUP BY over
# jobs, job_objects and findings), read in the SAME snapshot as the views it
# is compared with (one REPEATABLE READ transaction), so that they can be
# compared while writers keep writing.
#
# The random workload (pgbench scripts) is also here: 016 runs it for a
# minute, 018 runs it into a crash and on a logical-replication publisher.

package S3ScanCounters;

use strict;
use warnings;

use Exporter 'import';
use File::Temp ();
use Test::More;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(
  job_uuid_sql recount_sql counter_diffs counters_exact verify_rows
  matview_diffs write_workload pgbench_script_counts text_diff
);

# The uuid of job number N (an SQL expression; N may be a pgbench :variable).
sub job_uuid_sql
{
	my ($n) = @_;
	return "('dddddddd-0000-4000-8000-' || lpad(($n)::text, 12, '0'))::uuid";
}

# The recount: per job of `jobs`, its objects by status, its findings, the
# progress in percent (the 1.0 formula) and the newest object update.  Written
# independently of the extension's views: sums of CASE, not FILTER, and
# findings counted in their own GROUP BY.
# Columns: job_id, total, queued, processing, succeeded, failed, findings,
# progress_percent, last_object_update.
sub recount_sql
{
	return q{
SELECT j.job_id,
       COALESCE(o.n, 0), COALESCE(o.q, 0), COALESCE(o.p, 0), COALESCE(o.s, 0), COALESCE(o.f, 0),
       COALESCE(fi.n, 0),
       CASE WHEN COALESCE(o.n, 0) = 0 THEN 0.0::numeric
            ELSE ((o.s + o.f)::numeric * 100.0::numeric) / o.n::numeric END,
       o.lu
FROM jobs j
LEFT JOIN (SELECT job_id, count(*) AS n,
                  sum(CASE status WHEN 'queued' THEN 1 ELSE 0 END)::bigint AS q,
                  sum(CASE status WHEN 'processing' THEN 1 ELSE 0 END)::bigint AS p,
                  sum(CASE status WHEN 'succeeded' THEN 1 ELSE 0 END)::bigint AS s,
                  sum(CASE status WHEN 'failed' THEN 1 ELSE 0 END)::bigint AS f,
                  max(updated_at) AS lu
           FROM job_objects GROUP BY job_id) o ON o.job_id = j.job_id
LEFT JOIN (SELECT job_id, count(*) AS n FROM findings GROUP BY job_id) fi ON fi.job_id = j.job_id
ORDER BY j.job_id};
}

my $live_sql = q{
SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count,
       total_findings, progress_percent, last_object_update
FROM job_progress_live ORDER BY job_id};

my $summary_sql = q{
SELECT job_id, total_objects, queued, processing, succeeded, failed, total_findings
FROM job_summary ORDER BY job_id};

my $status_sql = q{
SELECT s.job_id, s.total_objects, s.queued_count, s.processing_count, s.succeeded_count,
       s.failed_count, s.total_findings, s.progress_percent, s.data_source
FROM jobs j CROSS JOIN LATERAL job_status(j.job_id, true) s ORDER BY j.job_id};

# The contract's invariant, checked on the internal tables: for EVERY job id
# (also of deleted jobs), the counter row plus its pending deltas equals the
# aggregate of the base tables.  Lists the job ids where it does not.  Since
# 1.3 a transaction's own deltas are rows only once it commits: PENDING is
# replaced by what adds them (pending_counter_deltas()), or by nothing before
# 1.3.
my $invariant_sql = q{
WITH maintained AS (
  SELECT job_id, sum(t) AS t, sum(q) AS q, sum(p) AS p, sum(s) AS s, sum(f) AS f, sum(fi) AS fi
  FROM (SELECT job_id, total_objects AS t, queued_count AS q, processing_count AS p,
               succeeded_count AS s, failed_count AS f, total_findings AS fi
        FROM job_counters
        UNION ALL
        SELECT job_id, total_objects, queued_count, processing_count, succeeded_count,
               failed_count, total_findings
        FROM job_counter_deltas
        PENDING) x
  GROUP BY job_id),
counted AS (
  SELECT job_id, sum(t) AS t, sum(q) AS q, sum(p) AS p, sum(s) AS s, sum(f) AS f, sum(fi) AS fi
  FROM (SELECT job_id, 1 AS t, (status = 'queued')::int AS q, (status = 'processing')::int AS p,
               (status = 'succeeded')::int AS s, (status = 'failed')::int AS f, 0 AS fi
        FROM job_objects
        UNION ALL
        SELECT job_id, 0, 0, 0, 0, 0, 1 FROM findings) y
  GROUP BY job_id)
SELECT COALESCE(m.job_id, c.job_id) AS job_id,
       'maintained (t,q,p,s,f,fi) = ' || ROW(m.t, m.q, m.p, m.s, m.f, m.fi)::text,
       'counted = ' || ROW(c.t, c.q, c.p, c.s, c.f, c.fi)::text
FROM maintained m FULL JOIN counted c ON c.job_id = m.job_id
WHERE ROW(COALESCE(m.t, 0)::numeric, COALESCE(m.q, 0)::numeric, COALESCE(m.p, 0)::numeric,
          COALESCE(m.s, 0)::numeric, COALESCE(m.f, 0)::numeric, COALESCE(m.fi, 0)::numeric)
      IS DISTINCT FROM
      ROW(COALESCE(c.t, 0)::numeric, COALESCE(c.q, 0)::numeric, COALESCE(c.p, 0)::numeric,
          COALESCE(c.s, 0)::numeric, COALESCE(c.f, 0)::numeric, COALESCE(c.fi, 0)::numeric)
ORDER BY 1};

# Lines only in one of two texts (both sorted by job id already), for diag.
sub text_diff
{
	my ($name_a, $a, $name_b, $b) = @_;
	my %in_b = map { $_ => 1 } split /\n/, $b;
	my %in_a = map { $_ => 1 } split /\n/, $a;
	my @out;
	push @out, map {"  only in $name_a: $_"} grep { !$in_b{$_} } split /\n/, $a;
	push @out, map {"  only in $name_b: $_"} grep { !$in_a{$_} } split /\n/, $b;
	@out = (@out[0 .. 19], '  ...') if @out > 20;
	return join("\n", @out);
}

# Runs the recount and every reader in one REPEATABLE READ snapshot and returns
# (list of differences, recount text).  $run is a sub that runs SQL and
# returns psql's unaligned output, or undef to use safe_psql on $node/$db.
# With in_txn => 1 the SQL runs inside the caller's open transaction (to
# compare a writer's own uncommitted changes).
sub counter_diffs
{
	my ($node, $db, %opts) = @_;
	my $run = $opts{run} // sub { $node->safe_psql($db, $_[0]) };
	my $pending =
	  $run->("SELECT to_regprocedure('pending_counter_deltas()') IS NOT NULL") eq 't'
	  ? 'UNION ALL SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, '
	  . 'failed_count, total_findings FROM pending_counter_deltas()'
	  : '';
	(my $invariant = $invariant_sql) =~ s/PENDING/$pending/;
	my @parts = (
		recount   => recount_sql(),
		live      => $live_sql,
		summary   => $summary_sql,
		status    => $status_sql,
		($opts{no_internal} ? () : (invariant => $invariant)));
	my $sql = $opts{in_txn} ? '' : "BEGIN ISOLATION LEVEL REPEATABLE READ;\n";
	for (my $i = 0; $i < @parts; $i += 2)
	{
		$sql .= "SELECT '#$parts[$i]';\n$parts[$i + 1];\n";
	}
	$sql .= "COMMIT;\n" unless $opts{in_txn};
	my $out = $run->($sql);
	my %res;
	my $cur;
	for my $line (split /\n/, $out)
	{
		if ($line =~ /^#(\w+)$/) { $cur = $1; $res{$cur} = []; next; }
		die "unexpected output before a marker: $line" unless defined $cur;
		push @{ $res{$cur} }, $line;
	}
	my %t = map { $_ => join("\n", @{ $res{$_} // [] }) } keys %res;
	my @recount = @{ $res{recount} // [] };
	my $want_live = $t{recount};
	my $want_summary =
	  join("\n", map { join('|', (split /\|/, $_, -1)[ 0 .. 6 ]) } @recount);
	my $want_status = join("\n",
		map { join('|', (split /\|/, $_, -1)[ 0 .. 7 ], 'real_time') } @recount);
	my @diffs;
	push @diffs, "job_progress_live differs from the recount:\n"
	  . text_diff('recount', $want_live, 'job_progress_live', $t{live})
	  if $t{live} ne $want_live;
	push @diffs, "job_summary differs from the recount:\n"
	  . text_diff('recount', $want_summary, 'job_summary', $t{summary})
	  if $t{summary} ne $want_summary;
	push @diffs, "job_status(id, true) differs from the recount:\n"
	  . text_diff('recount', $want_status, 'job_status', $t{status})
	  if $t{status} ne $want_status;
	push @diffs, "job_counters + job_counter_deltas differ from the base tables:\n$t{invariant}"
	  if !$opts{no_internal} && $t{invariant} ne '';
	return (\@diffs, $t{recount});
}

# verify_job_counters() rows (text, empty when exact).
sub verify_rows
{
	my ($node, $db, $job) = @_;
	my $arg = defined $job ? "'$job'" : '';
	return $node->safe_psql($db,
		"SELECT job_id, item, maintained, counted FROM verify_job_counters($arg) ORDER BY 1, 2");
}

# Both checks as tests; returns the recount text.
sub counters_exact
{
	my ($node, $db, $label, %opts) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($diffs, $recount) = counter_diffs($node, $db, %opts);
	ok(!@$diffs,
		"$label: job_progress_live, job_summary, job_status and counters+deltas equal the recount"
	) or diag(join("\n", @$diffs));
	is(verify_rows($node, $db), '', "$label: verify_job_counters() returns no row");
	return $recount;
}

# job_progress (the cache) against the recount, in one snapshot.
sub matview_diffs
{
	my ($node, $db) = @_;
	my $out = $node->safe_psql(
		$db, "BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT '#recount';" . recount_sql() . ";
SELECT '#cache';
SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count,
       total_findings, progress_percent, last_object_update FROM job_progress ORDER BY job_id;
COMMIT;");
	my ($recount, $cache) = $out =~ /^#recount\n?(.*?)\n?#cache\n?(.*)$/s
	  or die "unexpected output: $out";
	return '' if $recount eq $cache;
	return text_diff('recount', $recount, 'job_progress', $cache);
}

# Writes the random workload's pgbench scripts into $dir and returns the
# pgbench arguments (-f file@weight ...).  %opts: jobs (number of job ids),
# keys (object key space per job), churn (1 in N runs of the job script
# deletes a job), check (weight of the self-checking reader; it records
# any difference it sees in table tap_mismatch, which must exist).
#
# Locking: a script that writes a job's rows takes pg_advisory_xact_lock_shared(job) first;
# the job-deleting script takes the exclusive one.  So an object or finding is never written to
# a job being deleted (that would be a foreign-key error, which pgbench cannot retry); writers
# of the same job never wait on each other because of it.  Deadlocks between multi-row
# statements are retried by pgbench (--max-tries).
sub write_workload
{
	my ($dir, %opts) = @_;
	my $njobs = $opts{jobs}  // 8;
	my $nkeys = $opts{keys}  // 3000;
	my $churn = $opts{churn} // 10;
	my $J     = job_uuid_sql(':j');
	my $K     = job_uuid_sql(':k');
	my $head  = "\\set j random(1, $njobs)\n\\set x random(1, $nkeys)\n\\set n random(1, 30)\n"
	  . "\\set s random(1, 4)\n";
	my $status = "(ARRAY['queued','processing','succeeded','failed'])";
	my $etag   = "CASE WHEN g % 10 = 0 THEN NULL ELSE 'e' END";
	my $keys   = "ARRAY(SELECT 'k' || g FROM generate_series(:x, :x + :n) g)";
	my %s;

	# Object batches, ON CONFLICT DO NOTHING without a target (null etags
	# conflict too: the key is NULLS NOT DISTINCT).
	$s{obj_insert} = [ 10, $head . qq{BEGIN;
SELECT pg_advisory_xact_lock_shared(:j);
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT j.job_id, 'b', 'k' || g, $etag, ${status}[1 + (g + :s) % 4]
FROM jobs j CROSS JOIN generate_series(:x, :x + :n) g WHERE j.job_id = $J
ON CONFLICT DO NOTHING;
COMMIT;
} ];
	# ... with a conflict target.
	$s{obj_insert_target} = [ 6, $head . qq{BEGIN;
SELECT pg_advisory_xact_lock_shared(:j);
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT j.job_id, 'b', 'k' || g, $etag, 'queued'
FROM jobs j CROSS JOIN generate_series(:x, :x + :n) g WHERE j.job_id = $J
ON CONFLICT (job_id, bucket, key, etag) DO NOTHING;
COMMIT;
} ];
	# Upserts: inserted rows and updated rows in one statement; the WHERE
	# leaves some conflicting rows untouched.
	$s{obj_upsert} = [ 5, $head . qq{BEGIN;
SELECT pg_advisory_xact_lock_shared(:j);
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT j.job_id, 'b', 'k' || g, $etag, ${status}[1 + (g * :s) % 4]
FROM jobs j CROSS JOIN generate_series(:x, :x + :n) g WHERE j.job_id = $J
ON CONFLICT ON CONSTRAINT job_objects_natural_key
DO UPDATE SET status = EXCLUDED.status, last_error = NULL
   WHERE job_objects.status <> 'succeeded';
COMMIT;
} ];
	# The scanner's per-object status update (one row, autocommit).
	$s{obj_update} = [ 30, $head . qq{UPDATE job_objects SET status = ${status}[:s],
       last_error = CASE WHEN :s = 4 THEN 'AccessDenied' END
WHERE job_id = $J AND bucket = 'b' AND key = 'k' || :x;
} ];
	# Many rows at once.
	$s{obj_update_multi} = [ 5, $head . qq{BEGIN;
SELECT pg_advisory_xact_lock_shared(:j);
UPDATE job_objects SET status = ${status}[:s] WHERE job_id = $J AND key = ANY ($keys);
COMMIT;
} ];
	# No-op updates: same status (updated_at moves), and only last_error.
	$s{obj_noop} = [ 4, $head . qq{UPDATE job_objects SET status = status WHERE job_id = $J AND key = 'k' || :x;
UPDATE job_objects SET last_error = 'retry ' || :s WHERE job_id = $J AND key = 'k' || (:x + 1);
} ];
	# An update that moves an object to another job (its key made unique there).
	$s{obj_move} = [ 3, $head . qq{\\set k random(1, $njobs)
BEGIN;
SELECT pg_advisory_xact_lock_shared(:j), pg_advisory_xact_lock_shared(:k);
UPDATE job_objects SET job_id = $K, key = key || '-m' || id
WHERE job_id = $J AND key = ANY (ARRAY['k' || :x, 'k' || (:x + 7)])
  AND EXISTS (SELECT 1 FROM jobs WHERE job_id = $K);
COMMIT;
} ];
	$s{obj_delete} = [ 6, $head . qq{BEGIN;
SELECT pg_advisory_xact_lock_shared(:j);
DELETE FROM job_objects WHERE job_id = $J AND key = ANY ($keys);
COMMIT;
} ];
	# Findings: the dedup key has no job_id, so jobs conflict with each other.
	$s{find_insert} = [ 10, $head . qq{\\set o random(1, 20)
BEGIN;
SELECT pg_advisory_xact_lock_shared(:j);
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT j.job_id, 'b', 'k' || :x, 'e', (ARRAY['email','ssn'])[1 + g % 2], '***', :o * 4 + g
FROM jobs j CROSS JOIN generate_series(1, 10) g WHERE j.job_id = $J
ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT j.job_id, 'b', 'k' || (:x + 1), NULL, 'iban', '***', g
FROM jobs j CROSS JOIN generate_series(1, :s) g WHERE j.job_id = $J
ON CONFLICT DO NOTHING;
COMMIT;
} ];
	$s{find_delete} = [ 3, $head . qq{BEGIN;
SELECT pg_advisory_xact_lock_shared(:j);
DELETE FROM findings WHERE job_id = $J AND key = ANY ($keys);
COMMIT;
} ];
	$s{find_move} = [ 2, $head . qq{\\set k random(1, $njobs)
BEGIN;
SELECT pg_advisory_xact_lock_shared(:j), pg_advisory_xact_lock_shared(:k);
UPDATE findings SET job_id = $K
WHERE job_id = $J AND key = ANY ($keys) AND EXISTS (SELECT 1 FROM jobs WHERE job_id = $K);
COMMIT;
} ];
	# Everything, rolled back.
	$s{rollback} = [ 4, $head . qq{BEGIN;
SELECT pg_advisory_xact_lock_shared(:j);
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT j.job_id, 'b', 'k' || g, $etag, 'queued'
FROM jobs j CROSS JOIN generate_series(:x, :x + :n) g WHERE j.job_id = $J
ON CONFLICT DO NOTHING;
UPDATE job_objects SET status = ${status}[:s] WHERE job_id = $J AND key = ANY ($keys);
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT j.job_id, 'b', 'k' || :x, 'e', 'rollback', '***', g
FROM jobs j CROSS JOIN generate_series(1, 5) g WHERE j.job_id = $J
ON CONFLICT DO NOTHING;
DELETE FROM job_objects WHERE job_id = $J AND key = 'k' || (:x + 3);
DELETE FROM findings WHERE job_id = $J AND key = 'k' || (:x + 2);
ROLLBACK;
} ];
	# Savepoints rolled back and released, nested.
	$s{savepoint} = [ 4, $head . qq{BEGIN;
SELECT pg_advisory_xact_lock_shared(:j);
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT j.job_id, 'b', 'k' || g, $etag, 'processing'
FROM jobs j CROSS JOIN generate_series(:x, :x + 5) g WHERE j.job_id = $J
ON CONFLICT DO NOTHING;
SAVEPOINT a;
UPDATE job_objects SET status = 'succeeded' WHERE job_id = $J AND key = ANY ($keys);
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT j.job_id, 'b', 'k' || :x, 'e', 'savepoint', '***', g
FROM jobs j CROSS JOIN generate_series(1, 4) g WHERE j.job_id = $J
ON CONFLICT DO NOTHING;
DELETE FROM job_objects WHERE job_id = $J AND key = 'k' || (:x + 1);
ROLLBACK TO SAVEPOINT a;
UPDATE job_objects SET status = 'failed' WHERE job_id = $J AND key = 'k' || (:x + 2);
SAVEPOINT b;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT j.job_id, 'b', 'k' || g, $etag, 'queued'
FROM jobs j CROSS JOIN generate_series(:x + 6, :x + 9) g WHERE j.job_id = $J
ON CONFLICT DO NOTHING;
SAVEPOINT c;
DELETE FROM findings WHERE job_id = $J AND key = ANY ($keys);
UPDATE job_objects SET status = 'queued' WHERE job_id = $J AND key = ANY ($keys);
ROLLBACK TO SAVEPOINT c;
RELEASE SAVEPOINT b;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT j.job_id, 'b', 'k' || (:x + 1), 'e', 'savepoint', '***', g
FROM jobs j CROSS JOIN generate_series(1, 3) g WHERE j.job_id = $J
ON CONFLICT DO NOTHING;
COMMIT;
} ];
	# Now and then a job is deleted (its objects and findings cascade), and
	# usually created again at once with a few objects; or a delete rolled back.
	$s{job_churn} = [ 1, $head . qq{\\set c random(1, $churn)
\\set r random(0, 3)
\\if :c = 1
BEGIN;
SELECT pg_advisory_xact_lock(:j);
DELETE FROM jobs WHERE job_id = $J;
\\if :r > 0
INSERT INTO jobs (job_id, bucket, prefix) VALUES ($J, 'b', 'p/') ON CONFLICT DO NOTHING;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT $J, 'b', 'k' || g, $etag, ${status}[1 + g % 4] FROM generate_series(:x, :x + :n) g;
\\endif
COMMIT;
\\elif :c = 2
BEGIN;
SELECT pg_advisory_xact_lock(:j);
DELETE FROM jobs WHERE job_id = $J;
ROLLBACK;
\\endif
} ];
	# Deleted jobs come back.
	$s{job_create} = [ 2, $head . qq{INSERT INTO jobs (job_id, bucket, prefix) VALUES ($J, 'b', 'p/') ON CONFLICT DO NOTHING;
} ];
	# The self-checking reader: in one REPEATABLE READ snapshot, job_progress_live and
	# job_status(id, true) of one job against a count of its rows; a difference is recorded.
	my $count = qq{SELECT ROW(count(*), COALESCE(sum(CASE status WHEN 'queued' THEN 1 ELSE 0 END), 0)::bigint,
  COALESCE(sum(CASE status WHEN 'processing' THEN 1 ELSE 0 END), 0)::bigint,
  COALESCE(sum(CASE status WHEN 'succeeded' THEN 1 ELSE 0 END), 0)::bigint,
  COALESCE(sum(CASE status WHEN 'failed' THEN 1 ELSE 0 END), 0)::bigint,
  (SELECT count(*) FROM findings f WHERE f.job_id = $J))::text
  || ' ' || COALESCE(max(updated_at)::text, '-')
FROM job_objects WHERE job_id = $J HAVING EXISTS (SELECT 1 FROM jobs WHERE job_id = $J)};
	$s{check} = [ $opts{check} // 6, $head . qq{BEGIN ISOLATION LEVEL REPEATABLE READ;
INSERT INTO tap_mismatch (job_id, what, seen, counted)
SELECT $J, 'job_progress_live', seen, counted
FROM (SELECT (SELECT ROW(total_objects, queued_count, processing_count, succeeded_count,
                         failed_count, total_findings)::text
                     || ' ' || COALESCE(last_object_update::text, '-')
              FROM job_progress_live WHERE job_id = $J) AS seen,
             ($count) AS counted) x
WHERE seen IS DISTINCT FROM counted;
INSERT INTO tap_mismatch (job_id, what, seen, counted)
SELECT $J, 'job_status', seen, counted
FROM (SELECT (SELECT ROW(total_objects, queued_count, processing_count, succeeded_count,
                         failed_count, total_findings)::text
              FROM job_status($J, true)) AS seen,
             split_part(($count), ' ', 1) AS counted) x
WHERE seen IS DISTINCT FROM counted;
COMMIT;
} ] if $opts{check} // 1;

	my @args;
	for my $name (sort keys %s)
	{
		my ($weight, $text) = @{ $s{$name} };
		next if $weight == 0;
		my $file = "$dir/$name.sql";
		open my $fh, '>', $file or die "$file: $!";
		print $fh $text;
		close $fh;
		push @args, '-f', "$file\@$weight";
	}
	return @args;
}

# From pgbench's report with several scripts: { script name => transactions }.
sub pgbench_script_counts
{
	my ($stdout) = @_;
	my %n;
	while ($stdout =~ /^SQL script \d+: \S*?(\w+)\.sql\n - weight: \d+ \([^)]*\)\n - (\d+) transactions/mg)
	{
		$n{$1} = $2;
	}
	return \%n;
}

1;
