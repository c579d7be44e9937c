# The migration from the scanner system's database (issue 8, points 1-3 and 7), in detail; it
# complements 014_migrate.pl with data in every state compared row by row and against the system's
# own views, column grants and the owner's grant options, a reader queued behind the migration, and
# a finding whose only duplicate is set aside for another reason:
# s3scan_jobs_migrate.sql run by a superuser with psql on a database built by
# test/fixtures/existing-deployment.sql as its (non-superuser) owner, with data in every state.
#
# - every job, object (status, last_error, updated_at) and finding (id too) is there after, except
#   the rows the extension's constraints refuse, which are in s3scan_migration.rejected_* with their
#   reasons, counted in the NOTICE; the findings sequence continues past the old maximum;
# - job_summary / job_status (both ways) / job_progress (last_object_update included) /
#   job_statistics / active_jobs_progress answer what the system's own views answered over the same
#   rows (its progress rounded to 2 places), jobs without objects included;
# - every role keeps its rights on every object (PUBLIC's EXECUTE on the old
#   refresh_job_progress() excepted, by design); the application role then runs the clients'
#   statements; the refresh worker refreshes the migrated database; a second run is refused and
#   changes nothing;
# - refused, changing nothing (catalog + data fingerprint): an unknown column, a missing table, a
#   user view on job_progress; a failure in the middle (a superuser's event trigger refusing
#   CREATE EXTENSION) leaves the database exactly as before;
# - a hostile owner's operators and functions planted in public (and first on the database's
#   search_path) are never run by the migration.
#
# Test data marks what the migration must set aside: an expected reason in jobs.execution_arn,
# job_objects.last_error or findings.context, as 'expect:<reason>'. The expected state after the
# migration is computed on a copy of the database with those rows deleted, by the system's own
# views.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;

my $node = new_s3scan_node(
	'migrate',
	preload => 1,
	conf    => "s3scan_jobs.database = 'scans'\ns3scan_jobs.refresh_interval = '1s'\n");
$node->start;
my $bindir   = $node->config_data('--bindir');
my $migrate  = $node->config_data('--sharedir') . '/extension/s3scan_jobs_migrate.sql';
my $fixture  = "$FindBin::RealBin/../fixtures/existing-deployment.sql";
my $superuser = $node->safe_psql('postgres', 'SELECT current_user');
ok(-f $migrate, 'make install installed s3scan_jobs_migrate.sql beside the extension');

# Runs the migration on $db as the superuser, as the README says; returns (rc, stdout, stderr).
sub run_migration
{
	my ($db) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[ "$bindir/psql", '-X', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose',
		  '-d', $node->connstr($db), '-f', $migrate ],
		'<', \undef, '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

# SQL with a pinned search_path, so that the test itself never calls a planted object.
sub sq
{
	my ($db, $sql, %opts) = @_;
	return $node->safe_psql($db, "SET search_path = pg_catalog, public;\n$sql", %opts);
}
sub as_owner { my ($db, $sql) = @_; return sq($db, $sql, extra_params => [ '-U', 'scan_owner' ]); }

# Catalog + data fingerprint of everything outside the system schemas.
sub fingerprint
{
	my ($db) = @_;
	my $user_ns = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp'";
	my $catalog = sq($db, qq{
SELECT string_agg(x, E'\\n' ORDER BY x) FROM (
  SELECT format('nsp %s %s %s', n.nspname, n.nspowner::regrole, n.nspacl) AS x FROM pg_namespace n WHERE $user_ns
  UNION ALL
  SELECT format('rel %s.%s oid=%s kind=%s owner=%s acl=%s', n.nspname, c.relname, c.oid, c.relkind, c.relowner::regrole, c.relacl)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE $user_ns
  UNION ALL
  SELECT format('col %s.%s.%s %s notnull=%s default=%s acl=%s', n.nspname, c.relname, a.attname,
                format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attacl)
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE $user_ns AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT format('con %s.%s %s', n.nspname, c.conname, pg_get_constraintdef(c.oid))
  FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE $user_ns
  UNION ALL
  SELECT format('idx %s', pg_get_indexdef(i.indexrelid)) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE $user_ns
  UNION ALL
  SELECT format('view %s %s', c.oid::regclass, pg_get_viewdef(c.oid)) FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE $user_ns AND c.relkind IN ('v', 'm')
  UNION ALL
  SELECT format('matview %s populated=%s', c.oid::regclass, c.relispopulated) FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE $user_ns AND c.relkind = 'm'
  UNION ALL
  SELECT format('trg %s %s', t.tgenabled, pg_get_triggerdef(t.oid)) FROM pg_trigger t WHERE NOT t.tgisinternal
  UNION ALL
  SELECT format('proc %s.%s(%s) oid=%s owner=%s acl=%s src=%s', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
                p.oid, p.proowner::regrole, p.proacl, md5(p.prosrc))
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE $user_ns
  UNION ALL
  SELECT format('ext %s %s %s', e.extname, e.extversion, e.extnamespace::regnamespace) FROM pg_extension e
  UNION ALL
  SELECT format('evt %s %s %s', evtname, evtevent, evtenabled) FROM pg_event_trigger) s});
	my @rels = split /\n/, sq($db, qq{
SELECT format('%I.%I %s', n.nspname, c.relname, c.relkind) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE $user_ns AND c.relkind IN ('r', 'm', 'S') ORDER BY 1});
	my $data = '';
	for my $rel (@rels)
	{
		my ($name, $kind) = split / /, $rel;
		if ($kind eq 'm')
		{
			next if sq($db, "SELECT relispopulated FROM pg_class WHERE oid = '$name'::regclass") ne 't';
		}
		$data .= "$name: "
		  . ($kind eq 'S' ? sq($db, "SELECT last_value || ' ' || is_called FROM $name")
			: sq($db, "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM $name t"))
		  . "\n";
	}
	return "$catalog\n$data";
}

# --- the existing deployment, as its owner built it, with data ----------------------------------

$node->safe_psql('postgres', q{
CREATE ROLE scan_owner LOGIN;
CREATE ROLE scanner_app LOGIN;
CREATE ROLE scanner_ro LOGIN;
CREATE ROLE scanner_worker LOGIN;  -- column grants: reads the natural key, updates the status
CREATE ROLE nobody LOGIN;          -- no grant of its own: what PUBLIC may do
CREATE DATABASE tmpl OWNER scan_owner;
});
is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'scan_owner'"), 'f',
	'the database owner is not a superuser');
$node->safe_psql('tmpl', slurp_file($fixture), extra_params => [ '-U', 'scan_owner', '-v', 'ON_ERROR_STOP=1' ]);

my %job = map { $_ => sprintf('6f1d3c1e-0000-4000-8000-%012d', $_) } 1 .. 9;
as_owner('tmpl', qq{
-- 1: objects still being listed (none yet); 2: all done; 3, 4: mixed; 7: all queued
INSERT INTO jobs (job_id, bucket, prefix, execution_arn, created_at, updated_at) VALUES
  ('$job{1}', 'b1', 'p/', NULL, '2026-01-01 10:00+00', '2026-01-01 10:00+00'),
  ('$job{2}', 'b2', '', 'arn:aws:states:eu-west-1:1:execution:scan:2', '2026-01-02 10:00+00', '2026-01-02 11:00+00'),
  ('$job{3}', 'b3', 'deep/prefix/', 'arn:aws:states:eu-west-1:1:execution:scan:3', '2026-01-03 10:00+00', '2026-01-03 12:00+00'),
  ('$job{4}', 'b4', NULL, NULL, '2026-01-04 10:00+00', '2026-01-04 10:30+00'),
  ('$job{7}', 'b7', 'q/', 'arn:7', '2026-01-07 10:00+00', '2026-01-07 10:00+00'),
  ('$job{8}', 'shared', '', 'arn:8 (rescans what job 6 scanned)', '2026-01-08 10:00+00', '2026-01-08 10:00+00');
-- 5: created_at null (the old table allowed it)
INSERT INTO jobs (job_id, bucket, prefix, execution_arn, created_at, updated_at) VALUES
  ('$job{5}', 'b5', '', 'expect:created_at or updated_at is null', NULL, '2026-01-05 10:00+00');
-- 6: deleted later, leaving its findings behind
INSERT INTO jobs (job_id, bucket, created_at) VALUES ('$job{6}', 'shared', '2026-01-06 10:00+00');

INSERT INTO job_objects (job_id, bucket, key, etag, status, last_error, updated_at)
SELECT '$job{2}', 'b2', 'k' || g, 'e' || g, CASE WHEN g = 4 THEN 'failed' ELSE 'succeeded' END,
       CASE WHEN g = 4 THEN 'AccessDenied' END, '2026-01-02 10:00+00'::timestamptz + g * interval '1 minute'
FROM generate_series(1, 4) g;
INSERT INTO job_objects (job_id, bucket, key, etag, status, last_error, updated_at)
SELECT '$job{3}', 'b3', 'deep/prefix/k' || g, md5(g::text),
       (ARRAY['queued','queued','queued','queued','queued','processing','processing','processing','processing','processing',
              'succeeded','succeeded','succeeded','succeeded','succeeded','succeeded','succeeded','succeeded','failed','failed'])[g],
       CASE WHEN g >= 19 THEN 'timeout after ' || g || ' s' WHEN g = 7 THEN 'retrying: SlowDown' END,
       '2026-01-03 10:00+00'::timestamptz + g * interval '1 second'
FROM generate_series(1, 20) g;
INSERT INTO job_objects (job_id, bucket, key, etag, status, last_error, updated_at) VALUES
  ('$job{4}', 'b4', 'a', 'x', 'queued', NULL, '2026-01-04 10:01+00'),
  ('$job{4}', 'b4', 'b', 'x', 'queued', NULL, '2026-01-04 10:02+00'),
  ('$job{4}', 'b4', 'c', 'x', 'processing', 'retry 2', '2026-01-04 10:03+00'),
  ('$job{4}', 'b4', 'd', 'x', 'succeeded', NULL, '2026-01-04 10:04+00'),
  ('$job{4}', 'b4', 'e', 'x', 'succeeded', NULL, '2026-01-04 10:05+00'),
  ('$job{4}', 'b4', 'f', 'x', 'succeeded', NULL, '2026-01-04 10:06+00'),
  ('$job{4}', 'b4', 'g', 'x', 'succeeded', NULL, '2026-01-04 10:07+00'),
  ('$job{4}', 'b4', 'h', 'x', 'failed', 'NoSuchKey', '2026-01-04 10:08+00'),
  ('$job{4}', 'b4', 'b', 'y', 'queued', NULL, '2026-01-04 10:09+00'),        -- same key, other etag
  ('$job{4}', 'other-bucket', 'a', 'x', 'queued', NULL, '2026-01-04 10:10+00'),
  ('$job{5}', 'b5', 'k1', 'e', 'succeeded', 'expect:its job was rejected', '2026-01-05 10:01+00'),
  ('$job{5}', 'b5', 'k2', 'e', 'queued', 'expect:its job was rejected', '2026-01-05 10:02+00'),
  ('$job{6}', 'shared', 'gone', 'e', 'succeeded', NULL, '2026-01-06 10:01+00'),
  ('$job{7}', 'b7', 'q/1', 'e', 'queued', NULL, '2026-01-07 10:01+00'),
  ('$job{7}', 'b7', 'q/2', 'e', 'queued', NULL, '2026-01-07 10:02+00'),
  ('$job{7}', 'b7', 'q/3', 'e', 'queued', 'expect:updated_at is null', NULL),
  ('$job{8}', 'shared', 'shared/k', 'e8', 'succeeded', NULL, '2026-01-08 10:01+00');

INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at) VALUES
  ('$job{2}', 'b2', 'k1', 'e1', 'email', 'a***\@x.com', 'ctx', 10, '2026-01-02 10:05+00'),
  ('$job{2}', 'b2', 'k2', 'e2', 'ssn', '***-**-1234', NULL, 0, '2026-01-02 10:06+00');
-- job 6's findings, then the job goes: its objects go with it (foreign key), its findings stay
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at) VALUES
  ('$job{6}', 'shared', 'gone', 'e', 'email', 'g***', 'expect:its job does not exist', 1, '2026-01-06 10:02+00'),
  ('$job{6}', 'shared', 'gone', 'e', 'aws_key', 'AKIA***', 'expect:its job does not exist', 2, '2026-01-06 10:03+00'),
  ('$job{6}', 'shared', 'shared/k', NULL, 'email', 's***', 'expect:its job does not exist', 7, '2026-01-06 10:04+00');
DELETE FROM jobs WHERE job_id = '$job{6}';
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at) VALUES
  -- null etag: the old unique key let these repeat; the first by id is kept
  ('$job{3}', 'b3', 'dup/a', NULL, 'email', 'd***', 'first of three', 5, '2026-01-03 10:10+00'),
  ('$job{3}', 'b3', 'dup/a', NULL, 'email', 'd***', 'expect:a duplicate of a finding with a lower id', 5, '2026-01-03 10:11+00'),
  ('$job{3}', 'b3', 'deep/prefix/k1', md5('1'), 'ssn', 's***', 'kept', 3, '2026-01-03 10:12+00'),
  ('$job{3}', 'b3', 'dup/a', NULL, 'email', 'd***', 'expect:a duplicate of a finding with a lower id', 5, '2026-01-03 10:13+00'),
  ('$job{3}', 'b3', 'dup/b', NULL, 'ssn', 'd***', 'first of two', 9, '2026-01-03 10:14+00'),
  ('$job{3}', 'b3', 'dup/b', NULL, 'ssn', 'd***', 'expect:a duplicate of a finding with a lower id', 9, '2026-01-03 10:15+00'),
  ('$job{3}', 'b3', 'dup/b', NULL, 'ssn', 'd***', 'other offset: not a duplicate', 10, '2026-01-03 10:16+00'),
  ('$job{3}', 'b3', 'deep/prefix/k2', md5('2'), 'email', 'n***', 'expect:created_at is null', 4, NULL),
  ('$job{4}', 'b4', 'd', 'x', 'credit_card', '4***', NULL, 100, '2026-01-04 10:20+00'),
  ('$job{5}', 'b5', 'k1', 'e', 'email', 'r***', 'expect:its job was rejected', 1, '2026-01-05 10:03+00');
INSERT INTO materialized_view_refresh_log (view_name, last_refreshed_at, refresh_duration_ms, total_jobs, total_objects)
VALUES ('some_other_view', '2026-01-01 00:00+00', 12, 3, 4);
REFRESH MATERIALIZED VIEW job_progress;

-- the README's application grants on the old objects, a read-only role on the views
GRANT SELECT, INSERT, UPDATE, DELETE ON jobs, job_objects, findings TO scanner_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO scanner_app;
GRANT SELECT ON job_summary, job_progress, active_jobs_progress TO scanner_app;
GRANT SELECT, INSERT, UPDATE ON materialized_view_refresh_log TO scanner_app;
GRANT SELECT ON job_summary, job_progress, active_jobs_progress, job_statistics TO scanner_ro;
GRANT SELECT (job_id, bucket, key, etag), UPDATE (status, last_error, updated_at) ON job_objects TO scanner_worker;
});
# A rolled-back insert: the old sequence went past max(id).
$node->psql('tmpl', "BEGIN; INSERT INTO findings (job_id, bucket, key, detector, masked_match, byte_offset)
                     VALUES ('$job{2}', 'b2', 'x', 'd', 'm', 1); ROLLBACK;", extra_params => [ '-U', 'scan_owner' ]);

# Rights of every role (nobody = PUBLIC's) on every object, as "role object privilege bool" lines.
my @tables = qw(jobs job_objects findings materialized_view_refresh_log job_summary job_progress
  active_jobs_progress job_statistics);
my @roles = qw(scan_owner scanner_app scanner_ro nobody);
sub rights
{
	my ($db) = @_;
	my $roles = join(',', map { "'$_'" } @roles);
	my $tables = join(',', map { "'$_'" } @tables);
	return sq($db, qq{
SELECT string_agg(x, E'\\n' ORDER BY x) FROM (
  SELECT r || ' ' || o || ' ' || p || ' ' || has_table_privilege(r, 'public.' || o, p) AS x
  FROM unnest(ARRAY[$roles]) r, unnest(ARRAY[$tables]) o,
       unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p0,
       LATERAL (VALUES (p0), (p0 || ' WITH GRANT OPTION')) v(p)
  UNION ALL
  SELECT r || ' findings_id_seq ' || p || ' ' || has_sequence_privilege(r, 'public.findings_id_seq', p)
  FROM unnest(ARRAY[$roles]) r, unnest(ARRAY['USAGE', 'SELECT', 'UPDATE', 'USAGE WITH GRANT OPTION']) p
  UNION ALL
  SELECT r || ' refresh_job_progress() EXECUTE ' || has_function_privilege(r, 'public.refresh_job_progress()', 'EXECUTE')
  FROM unnest(ARRAY[$roles]) r) s});
}

my $rights_before = rights('tmpl');
my $column_rights_sql = q{SELECT string_agg(a.attname || ' ' || p || ' ' || has_column_privilege('scanner_worker', a.attrelid, a.attname, p), E'\n'
                                            ORDER BY a.attname, p)
    FROM pg_attribute a, unnest(ARRAY['SELECT', 'UPDATE', 'INSERT']) p
    WHERE a.attrelid = 'public.job_objects'::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'id'};
my $column_rights_before = sq('tmpl', $column_rights_sql);
like($column_rights_before, qr/^status UPDATE true$/m, 'before: the worker role may update job_objects.status (a column grant)');
like($rights_before, qr/^scanner_app jobs INSERT true$/m, 'before: the application role writes jobs');
like($rights_before, qr/^nobody job_progress SELECT true$/m, 'before: PUBLIC reads job_progress (the fixture grants it)');

# --- the expected state: the same database without the rows to set aside, by the system's views ----

$node->safe_psql('postgres', 'CREATE DATABASE expect TEMPLATE tmpl OWNER scan_owner; CREATE DATABASE scans TEMPLATE tmpl OWNER scan_owner');
sq('expect', q{
DELETE FROM findings WHERE context LIKE 'expect:%';
DELETE FROM job_objects WHERE last_error LIKE 'expect:%';
DELETE FROM jobs WHERE execution_arn LIKE 'expect:%';
REFRESH MATERIALIZED VIEW job_progress;
});
my %q_rows = (
	jobs => 'SELECT job_id, bucket, prefix, execution_arn, created_at, updated_at FROM public.jobs ORDER BY job_id',
	job_objects => 'SELECT job_id, bucket, key, etag, status, last_error, updated_at FROM public.job_objects
	                ORDER BY job_id, bucket, key, etag',
	findings => 'SELECT id, job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at
	             FROM public.findings ORDER BY id');
my %expect = map { $_ => sq('expect', $q_rows{$_}) } keys %q_rows;
my %set_aside = (
	jobs => sq('tmpl', "SELECT substr(execution_arn, 8), job_id, bucket, prefix, execution_arn, created_at, updated_at
	                    FROM jobs WHERE execution_arn LIKE 'expect:%' ORDER BY job_id"),
	job_objects => sq('tmpl', "SELECT substr(last_error, 8), job_id, bucket, key, etag, status, last_error, updated_at
	                    FROM job_objects WHERE last_error LIKE 'expect:%' ORDER BY job_id, bucket, key, etag"),
	findings => sq('tmpl', "SELECT substr(context, 8), id, job_id, bucket, key, etag, detector, masked_match, context,
	                    byte_offset, created_at FROM findings WHERE context LIKE 'expect:%' ORDER BY id"));
my %n_aside = map { $_ => scalar(grep { $_ ne '' } split /\n/, $set_aside{$_}) } keys %set_aside;
is_deeply(\%n_aside, { jobs => 1, job_objects => 3, findings => 8 }, 'the data has rows to set aside of every kind');
my $old_max_id = sq('tmpl', 'SELECT max(id) FROM findings');

# Counts from the rows themselves: the system's job_summary counted a job without objects as having
# one (count(DISTINCT (jo.bucket, jo.key, jo.etag)) counts the all-null row of the LEFT JOIN); its
# job_progress counted them right, and is compared below.
my $count_sql = q{SELECT j.job_id, (SELECT count(*) FROM job_objects o WHERE o.job_id = j.job_id),
    (SELECT count(*) FROM job_objects o WHERE o.job_id = j.job_id AND o.status = 'queued'),
    (SELECT count(*) FROM job_objects o WHERE o.job_id = j.job_id AND o.status = 'processing'),
    (SELECT count(*) FROM job_objects o WHERE o.job_id = j.job_id AND o.status = 'succeeded'),
    (SELECT count(*) FROM job_objects o WHERE o.job_id = j.job_id AND o.status = 'failed'),
    (SELECT count(*) FROM findings f WHERE f.job_id = j.job_id) FROM jobs j ORDER BY j.job_id};
my $old_counts = sq('expect', $count_sql);
my $old_progress = sq('expect', q{SELECT job_id, bucket, prefix, execution_arn, created_at, updated_at, total_objects,
    queued_count, processing_count, succeeded_count, failed_count, total_findings, round(progress_percent, 2),
    last_object_update FROM job_progress ORDER BY job_id});
my $old_stats = sq('expect', q{SELECT total_jobs, completed_jobs, in_progress_jobs, pending_jobs, total_objects_all_jobs,
    total_objects_processed, total_findings_all_jobs, round(avg_progress, 2), most_recent_job, oldest_active_job
    FROM job_statistics});
my $old_active = sq('expect', 'SELECT job_id FROM active_jobs_progress');
my $job1 = $job{1};
like($old_active, qr/\Q$job1\E/, 'the system counts a job without objects as active');

# --- the migration ------------------------------------------------------------------------------

my ($rc, $out, $err) = run_migration('scans');
is($rc, 0, 'the migration succeeds') or diag("stdout:\n$out\nstderr:\n$err");
unlike($err, qr/ERROR|WARNING/, 'no error or warning');
my $moved = sq('expect', 'SELECT (SELECT count(*) FROM jobs) || \' jobs, \' || (SELECT count(*) FROM job_objects)
                          || \' objects, \' || (SELECT count(*) FROM findings) || \' findings\'');
like($err,
	qr/NOTICE: +(00000: +)?s3scan_jobs migration: moved \Q$moved\E; kept aside $n_aside{jobs} jobs, $n_aside{job_objects} objects, $n_aside{findings} findings/,
	"the NOTICE counts what moved ($moved) and what was set aside");
like($err, qr/s3scan_migration\.rejected_jobs/, 'and says where the rows set aside are');

is(sq('scans', "SELECT extname || ' ' || extnamespace::regnamespace FROM pg_extension WHERE extname = 's3scan_jobs'"),
	's3scan_jobs public', 'the extension is installed in public');
for my $t (sort keys %q_rows)
{
	my $after = sq('scans', $q_rows{$t});
	ok($after eq $expect{$t}, "$t: every row there, unchanged, but those set aside")
	  or diag("expected:\n$expect{$t}\ngot:\n$after");
	my $cols = $t eq 'jobs' ? 'job_id, bucket, prefix, execution_arn, created_at, updated_at'
	  : $t eq 'job_objects' ? 'job_id, bucket, key, etag, status, last_error, updated_at'
	  : 'id, job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at';
	my $order = $t eq 'jobs' ? 'job_id' : $t eq 'job_objects' ? 'job_id, bucket, key, etag' : 'id';
	my ($r, $aside, $e) = psql_result($node, 'scans', "SELECT reason, $cols FROM s3scan_migration.rejected_$t ORDER BY $order");
	ok($r == 0 && $aside eq $set_aside{$t}, "$t: the rows the extension refuses are in s3scan_migration.rejected_$t, with their reasons")
	  or diag("expected:\n$set_aside{$t}\ngot:\n$aside\n$e");
}
is(sq('scans', q{SELECT string_agg(format('%s=%s', t.relname, t.relkind), ' ' ORDER BY t.relname) FROM pg_class t
                 WHERE t.relnamespace = 's3scan_migration'::regnamespace AND t.relkind IN ('r', 'v', 'm', 'S')}),
	'rejected_findings=r rejected_job_objects=r rejected_jobs=r', 's3scan_migration holds the three tables of rows set aside, nothing else');
is(sq('scans', "SELECT count(*) FROM pg_proc WHERE proname = 'update_updated_at_column'"), '0',
	"the system's trigger function is gone with its triggers");
is(sq('scans', "SELECT view_name, last_refreshed_at, refresh_duration_ms, total_jobs, total_objects
                FROM materialized_view_refresh_log WHERE view_name <> 'job_progress'"),
	"some_other_view|2026-01-01 00:00:00+00|12|3|4", "the refresh log's rows of other views are kept");
cmp_ok(sq('scans', 'SELECT last_value FROM public.findings_id_seq'), '>=', $old_max_id,
	"the findings sequence continues past the old maximum ($old_max_id)");

# --- the counts, as the system's own views gave them ---------------------------------------------

is(sq('scans', q{SELECT job_id, total_objects, queued, processing, succeeded, failed, total_findings
                 FROM job_summary ORDER BY job_id}), $old_counts, "job_summary: the system's counts");
for my $rt ('true', 'false')
{
	is(sq('scans', qq{SELECT s.job_id, s.total_objects, s.queued_count, s.processing_count, s.succeeded_count,
	                         s.failed_count, s.total_findings FROM jobs j, job_status(j.job_id, $rt) s ORDER BY 1}),
		$old_counts, "job_status(real_time => $rt): the system's counts");
}
is(sq('scans', "SELECT string_agg(DISTINCT data_source, ',') FROM jobs j, job_status(j.job_id) s"), 'cached',
	'job_status answers from the cache the migration refreshed');
is(sq('scans', q{SELECT job_id, bucket, prefix, execution_arn, created_at, updated_at, total_objects, queued_count,
    processing_count, succeeded_count, failed_count, total_findings, round(progress_percent, 2), last_object_update
    FROM job_progress ORDER BY job_id}), $old_progress, "job_progress (last_object_update too): the system's rows");
is(sq('scans', q{SELECT total_jobs, completed_jobs, in_progress_jobs, pending_jobs, total_objects_all_jobs,
    total_objects_processed, total_findings_all_jobs, round(avg_progress, 2), most_recent_job, oldest_active_job
    FROM job_statistics}), $old_stats, "job_statistics: the system's row");
is(sq('scans', 'SELECT job_id FROM active_jobs_progress'), $old_active,
	"active_jobs_progress: the system's jobs, newest first, the one without objects included");

# --- rights ----------------------------------------------------------------------------------------

my $rights_after = rights('scans');
my $rights_expected = join("\n", map {
	# PUBLIC's EXECUTE on the old refresh_job_progress() is not carried (it refreshed nothing for
	# anyone but the view's owner); the owner's is.
	/^(\S+) refresh_job_progress\(\) EXECUTE true$/ && $1 ne 'scan_owner' ? "$1 refresh_job_progress() EXECUTE false" : $_
} split /\n/, $rights_before);
sub same_rights
{
	my ($label, $filter) = @_;
	my %a = map { /^(.*) (\S+)$/ ? ($1 => $2) : () } split /\n/, $rights_after;
	my @diff = grep { $filter->($_) && /^(.*) (\S+)$/ && ($a{$1} // '?') ne $2 } split /\n/, $rights_expected;
	ok(!@diff, $label)
	  or diag("expected -> got:\n" . join("\n", map { /^(.*) (\S+)$/; "$1: $2 -> " . ($a{$1} // '?') } @diff));
}
same_rights('every role has the privileges it had on every object (PUBLIC\'s included)', sub { $_[0] !~ /GRANT OPTION/ });
# The owner could grant its rights on its tables to other roles (an owner's grant options are
# implicit); after the migration the objects belong to the superuser: the owner must still be
# able to hand out what it could.
same_rights('every role keeps the grant options it had (the owner\'s included)', sub { $_[0] =~ /GRANT OPTION/ });
is(sq('scans', q{SELECT string_agg(r || '=' || has_sequence_privilege(r, 'public.job_objects_id_seq', 'USAGE'), ' ' ORDER BY r)
                 FROM unnest(ARRAY['nobody', 'scan_owner', 'scanner_app', 'scanner_ro']) r}),
	'nobody=false scan_owner=true scanner_app=true scanner_ro=false',
	'who could insert objects may take their new ids (job_objects_id_seq), and no one else');

is(sq('scans', $column_rights_sql), $column_rights_before, 'the column grants on job_objects are kept');
my ($r, $o, $e) = psql_result($node, 'scans', qq{UPDATE job_objects SET status = 'succeeded', last_error = NULL, updated_at = now()
    WHERE job_id = '$job{3}' AND bucket = 'b3' AND key = 'deep/prefix/k5' AND etag = md5('5')},
	extra_params => [ '-U', 'scanner_worker' ]);
is($r, 0, "the worker role (column grants) runs the scanner workers' UPDATE after the migration") or diag($e);

# the read-only role reads every view it could read
($r, $o, $e) = psql_result($node, 'scans', q{
SELECT count(*) FROM job_summary; SELECT count(*) FROM job_progress; SELECT count(*) FROM active_jobs_progress;
SELECT total_jobs FROM job_statistics;}, extra_params => [ '-U', 'scanner_ro' ]);
is("$r|$o", "0|6\n6\n4\n6", 'the read-only role reads job_summary, job_progress, active_jobs_progress, job_statistics')
  or diag($e);

# --- the application runs the clients' statements ---------------------------------------------------

my $new_job = '6f1d3c1e-0000-4000-8000-0000000000aa';
($r, $o, $e) = psql_result($node, 'scans', qq{
\\set ON_ERROR_STOP 1
INSERT INTO jobs (job_id, bucket, prefix, execution_arn, created_at) VALUES ('$new_job', 'b-new', 'n/', 'arn:new', now());
INSERT INTO jobs (job_id, bucket, prefix, created_at) VALUES ('6f1d3c1e-0000-4000-8000-0000000000ab', 'b-new', '', now());
BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES ('$new_job', 'b-new', 'n/1', 'e1', 'queued', now()) ON CONFLICT DO NOTHING;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES ('$new_job', 'b-new', 'n/2', 'e2', 'queued', now()) ON CONFLICT DO NOTHING;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES ('$job{4}', 'b4', 'a', 'x', 'queued', now()) ON CONFLICT DO NOTHING;
COMMIT;
UPDATE job_objects SET status = 'processing', last_error = NULL, updated_at = now()
  WHERE job_id = '$new_job' AND bucket = 'b-new' AND key = 'n/1' AND etag = 'e1';
UPDATE job_objects SET status = 'succeeded', last_error = NULL, updated_at = now()
  WHERE job_id = '$new_job' AND bucket = 'b-new' AND key = 'n/1' AND etag = 'e1';
UPDATE job_objects SET status = 'failed', last_error = 'AccessDenied', updated_at = now()
  WHERE job_id = '$job{7}' AND bucket = 'b7' AND key = 'q/1' AND etag = 'e';
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
  VALUES ('$new_job', 'b-new', 'n/1', 'e1', 'email', 'n***', 'c', 1, now())
  ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
  VALUES ('$job{3}', 'b3', 'dup/a', NULL, 'email', 'd***', 'again', 5, now())
  ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
SELECT 1 FROM pg_matviews WHERE schemaname = 'public' AND matviewname = 'job_progress';
SELECT last_refreshed_at IS NOT NULL, refresh_duration_ms IS NOT NULL FROM materialized_view_refresh_log WHERE view_name = 'job_progress';
SELECT total_objects, succeeded_count, total_findings, status, data_source FROM job_status('$new_job', true);
SELECT count(*) FROM job_status('$new_job');
SELECT total_objects, failed_count, status, data_source FROM job_status('$job{2}');
SELECT total_objects, queued, failed FROM job_summary WHERE job_id = '$job{7}';
}, extra_params => [ '-U', 'scanner_app' ]);
is($r, 0, "the application role runs the clients' statements on the migrated tables") or diag($e);
is($o, "1\nt|t\n2|1|1|processing|real_time\n1\n4|1|completed|cached\n2|1|1",
	'and reads what they did (job_status both ways, job_summary)');
cmp_ok(sq('scans', "SELECT id FROM findings WHERE job_id = '$new_job'"), '>', $old_max_id,
	'a new finding gets an id past the old maximum');
is(sq('scans', "SELECT count(*) FROM findings WHERE key = 'dup/a'"), '1', 'the de-duplication key holds (nulls equal)');

# --- the refresh worker serves the migrated database ------------------------------------------------

ok(defined wait_for($node, 'scans',
		"SELECT count(*) > 0 FROM refresh_history WHERE origin = 'worker' AND outcome = 'refreshed'"),
	'the refresh worker refreshes job_progress after the migration');
ok(defined wait_for($node, 'scans', "SELECT data_source FROM job_status('$new_job')", 'cached'),
	'and job_status answers the new job from its cache');

# --- a second run is refused and changes nothing -----------------------------------------------------

$node->safe_psql('scans', "ALTER SYSTEM SET s3scan_jobs.refresh_interval = 0; SELECT pg_reload_conf();");
wait_for($node, 'scans', "SELECT state FROM refresh_worker_status WHERE database = 'scans'", 'disabled');
my $fp = fingerprint('scans');
($rc, $out, $err) = run_migration('scans');
isnt($rc, 0, 'a second run fails');
like($err, qr/ERROR: +55000: +the extension s3scan_jobs is already installed in this database/,
	'with 55000 and "already installed"');
ok(fingerprint('scans') eq $fp, 'and changes nothing');

# --- refused, changing nothing ---------------------------------------------------------------------

my $n = 0;
sub refused
{
	my ($label, $prepare, $as, $re) = @_;
	my $db = 'refused_' . ++$n;
	$node->safe_psql('postgres', "CREATE DATABASE $db TEMPLATE tmpl OWNER scan_owner");
	$node->safe_psql($db, $prepare, extra_params => [ '-U', $as ]);
	my $before = fingerprint($db);
	my ($rc, $out, $err) = run_migration($db);
	isnt($rc, 0, "$label: the migration fails");
	like($err, $re, "$label: saying why") or diag($err);
	my $after = fingerprint($db);
	ok($after eq $before, "$label: the database is exactly as before") or diag("before:\n$before\nafter:\n$after");
	return $db;
}
refused('an unknown column', 'ALTER TABLE job_objects ADD COLUMN priority integer', 'scan_owner',
	qr/ERROR: +55000: +this database is not in the state the migration starts from\nDETAIL: +.*column job_objects\.priority is unknown/);
refused('a missing table', 'DROP TABLE materialized_view_refresh_log', 'scan_owner',
	qr/ERROR: +55000: .*\nDETAIL: +.*table public\.materialized_view_refresh_log is missing/);
refused('a user view on job_progress',
	'CREATE VIEW my_dashboard AS SELECT job_id, progress_percent FROM job_progress', 'scan_owner',
	qr/ERROR: +2BP01: +other objects depend on the tables and views the migration replaces\nDETAIL: +.*view (public\.)?my_dashboard/);
my $evt = refused('a failure in the middle (CREATE EXTENSION refused by an event trigger)', q{
CREATE FUNCTION public.no_extensions() RETURNS event_trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'no extension today'; END $$;
CREATE EVENT TRIGGER no_extensions ON ddl_command_start WHEN TAG IN ('CREATE EXTENSION')
  EXECUTE FUNCTION public.no_extensions();}, $superuser, qr/ERROR: +P0001: +no extension today/);
is(sq($evt, q{SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 's3scan_migration') || ' '
    || (SELECT count(*) FROM pg_extension WHERE extname = 's3scan_jobs') || ' '
    || (SELECT string_agg(c.relname || ':' || c.relkind::text, ',' ORDER BY c.relname) FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v', 'm')) || ' '
    || (to_regprocedure('public.refresh_job_progress()') IS NOT NULL)::text}),
	'0 0 active_jobs_progress:v,findings:r,job_objects:r,job_progress:m,job_statistics:v,job_summary:v,jobs:r,'
	  . 'materialized_view_refresh_log:r true',
	'after the failure: the old tables, views and function in public, no s3scan_migration, no extension');
is(sq($evt, $q_rows{findings}), sq('tmpl', $q_rows{findings}), 'after the failure: every finding in the old table');

# --- a null-etag finding whose duplicate of a lower id is set aside for another reason moves ----------

# Job 8 rescans the key of job 6, deleted: job 6's finding stayed behind with the same
# de-duplication key (null etag, so the old unique key let both in), and a lower id. The orphan is
# set aside (its job does not exist); job 8's breaks no constraint of the extension and must move.
$node->safe_psql('postgres', 'CREATE DATABASE crossdup TEMPLATE tmpl OWNER scan_owner');
as_owner('crossdup', qq{INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
  VALUES ('$job{8}', 'shared', 'shared/k', NULL, 'email', 's***', 'same key as an orphan of a lower id', 7, '2026-01-08 10:02+00')});
($rc, $out, $err) = run_migration('crossdup');
is($rc, 0, 'crossdup: the migration succeeds') or diag($err);
is(sq('crossdup', "SELECT count(*) FROM findings WHERE job_id = '$job{8}'")
	  . ' ' . sq('crossdup', "SELECT string_agg(reason, ', ') FROM s3scan_migration.rejected_findings WHERE job_id = '$job{8}'"),
	'1 ', "a finding whose only duplicate (lower id) is set aside for another reason moves (and is not set aside)");
is(sq('crossdup', "SELECT total_findings FROM job_status('$job{8}', true)"), '1', 'and job_status counts it');

# --- readers queued behind the migration wait for it, and neither fails --------------------------------

# A transaction reading jobs is open when the migration starts: the migration waits for its lock on
# the tables, and a reader of job_summary that comes meanwhile queues behind it (holding its lock on
# the view, waiting for the tables). When the long transaction ends, the migration must still get
# through, and the reader then read the new job_summary: no deadlock, no error for either.
$node->safe_psql('postgres', 'CREATE DATABASE queued TEMPLATE tmpl OWNER scan_owner');
{
	my ($in_a, $out_a, $err_a) = ("BEGIN;\nSELECT count(*) FROM jobs;\n", '', '');
	my $ha = IPC::Run::start([ "$bindir/psql", '-X', '-At', '-d', $node->connstr('queued') ],
		'<', \$in_a, '>', \$out_a, '2>', \$err_a);
	$ha->pump until $out_a =~ /\d/;
	my ($m_out, $m_err) = ('', '');
	my $m = IPC::Run::start([ "$bindir/psql", '-X', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose',
		  '-d', $node->connstr('queued'), '-f', $migrate ], '<', \undef, '>', \$m_out, '2>', \$m_err);
	ok(defined wait_for($node, 'postgres', q{SELECT count(*) > 0 FROM pg_locks l JOIN pg_database d ON d.oid = l.database
	                                          WHERE d.datname = 'queued' AND NOT l.granted AND l.mode = 'AccessExclusiveLock'}),
		'queued: the migration waits for the open transaction');
	my ($b_out, $b_err) = ('', '');
	my $hb = IPC::Run::start([ "$bindir/psql", '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('queued'),
		  '-c', 'SELECT count(*) FROM job_summary' ], '<', \undef, '>', \$b_out, '2>', \$b_err);
	ok(defined wait_for($node, 'postgres', q{SELECT count(*) > 0 FROM pg_locks l JOIN pg_database d ON d.oid = l.database
	                                          WHERE d.datname = 'queued' AND NOT l.granted AND l.mode = 'AccessShareLock'}),
		'queued: a reader of job_summary waits behind it');
	$in_a .= "COMMIT;\n";
	$ha->finish;
	$m->finish;
	$hb->finish;
	is($m->result(0), 0, 'queued: the migration then succeeds') or diag($m_err);
	is($hb->result(0) . " $b_out", "0 6\n", 'queued: and the reader reads the new job_summary, without an error')
	  or diag($b_err);
}

# --- a hostile owner's planted objects never run -------------------------------------------------------

$node->safe_psql('postgres', 'CREATE DATABASE hostile TEMPLATE tmpl OWNER scan_owner');
as_owner('hostile', q{
CREATE TABLE public.captured (what text, who name DEFAULT current_user);
GRANT INSERT ON public.captured TO PUBLIC;
-- each trap records its caller (rolled back with a failed migration, so it also warns) and
-- answers as pg_catalog's would, so that a captured name changes nothing else
CREATE FUNCTION public.trap(what text) RETURNS void LANGUAGE plpgsql AS
  $b$ BEGIN RAISE WARNING 'TRAP % run by %', what, current_user; INSERT INTO public.captured (what) VALUES (what); END $b$;
DO $plant$
DECLARE
    pairs text[] := ARRAY['text,text', 'name,name', 'name,text', 'text,name', 'oid,oid', '"char","char"',
                          '"char",text', 'bigint,bigint', 'integer,integer', 'bigint,integer', 'integer,bigint',
                          'smallint,integer', 'uuid,uuid', 'numeric,numeric', 'boolean,boolean',
                          'timestamp with time zone,timestamp with time zone', 'regclass,regclass', 'oid,regclass',
                          'text,unknown', 'name,unknown', '"char",unknown', 'aclitem,aclitem'];
    ops text[] := ARRAY['=', '<>', '<', '>', '<=', '>=', '+', '-', '*', '/', '||', '~~'];
    pair text; l text; r text; op text; fn text; n int := 0; rettype text; stmts text[] := '{}'; stmt text;
BEGIN
    -- all statements first, then run them: once an operator is planted, this block's own
    -- expressions would find it too
    FOREACH pair IN ARRAY pairs LOOP
        l := split_part(replace(pair, 'with time zone,', 'with time zone|'), CASE WHEN pair LIKE 'timestamp%' THEN '|' ELSE ',' END, 1);
        r := CASE WHEN pair LIKE 'timestamp%' THEN 'timestamp with time zone' ELSE split_part(pair, ',', 2) END;
        IF r = 'unknown' THEN CONTINUE; END IF;  -- no function takes unknown: the text/name/"char" ones cover it
        FOREACH op IN ARRAY ops LOOP
            n := n + 1;
            fn := 'public.trap_op_' || n;
            rettype := CASE WHEN op IN ('+', '-', '*', '/') THEN l WHEN op = '||' THEN 'text' ELSE 'boolean' END;
            -- the answer pg_catalog's operator gives, if there is one for the pair
            stmts := stmts || format('CREATE FUNCTION %s(a %s, b %s) RETURNS %s LANGUAGE plpgsql AS $f$ BEGIN '
                                     'PERFORM public.trap(%L); RETURN a OPERATOR(pg_catalog.%s) b; END $f$; '
                                     'CREATE OPERATOR public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %s)',
                                     fn, l, r, rettype, format('operator %s(%s, %s)', op, l, r), op, op, l, r, fn);
        END LOOP;
    END LOOP;
    FOREACH stmt IN ARRAY stmts LOOP
        BEGIN
            EXECUTE stmt;
        EXCEPTION WHEN OTHERS THEN NULL;   -- no such pg_catalog operator, or not creatable
        END;
    END LOOP;
END
$plant$;
CREATE FUNCTION public.format(text) RETURNS text LANGUAGE plpgsql AS $b$ BEGIN PERFORM public.trap('format(text)'); RETURN pg_catalog.format($1); END $b$;
CREATE FUNCTION public.format(text, text) RETURNS text LANGUAGE plpgsql AS $b$ BEGIN PERFORM public.trap('format(text,text)'); RETURN pg_catalog.format($1, $2); END $b$;
CREATE FUNCTION public.format(text, text, text) RETURNS text LANGUAGE plpgsql AS $b$ BEGIN PERFORM public.trap('format(text,text,text)'); RETURN pg_catalog.format($1, $2, $3); END $b$;
CREATE FUNCTION public.format(text, text, text, text) RETURNS text LANGUAGE plpgsql AS $b$ BEGIN PERFORM public.trap('format(text,text,text,text)'); RETURN pg_catalog.format($1, $2, $3, $4); END $b$;
CREATE FUNCTION public.quote_ident(text) RETURNS text LANGUAGE plpgsql AS $b$ BEGIN PERFORM public.trap('quote_ident'); RETURN pg_catalog.quote_ident($1); END $b$;
CREATE FUNCTION public.setval(regclass, bigint, boolean) RETURNS bigint LANGUAGE plpgsql AS $b$ BEGIN PERFORM public.trap('setval'); RETURN pg_catalog.setval($1, $2, $3); END $b$;
CREATE FUNCTION public.setval(text, bigint, boolean) RETURNS bigint LANGUAGE plpgsql AS $b$ BEGIN PERFORM public.trap('setval(text)'); RETURN pg_catalog.setval($1::regclass, $2, $3); END $b$;
CREATE FUNCTION public.format_type(oid, integer) RETURNS text LANGUAGE plpgsql AS $b$ BEGIN PERFORM public.trap('format_type'); RETURN pg_catalog.format_type($1, $2); END $b$;
CREATE FUNCTION public.pg_describe_object(oid, oid, integer) RETURNS text LANGUAGE plpgsql AS $b$ BEGIN PERFORM public.trap('pg_describe_object'); RETURN pg_catalog.pg_describe_object($1, $2, $3); END $b$;
CREATE FUNCTION public.acldefault("char", oid) RETURNS aclitem[] LANGUAGE plpgsql AS $b$ BEGIN PERFORM public.trap('acldefault'); RETURN pg_catalog.acldefault($1, $2); END $b$;
CREATE FUNCTION public.aclexplode(aclitem[], OUT grantor oid, OUT grantee oid, OUT privilege_type text, OUT is_grantable boolean)
  RETURNS SETOF record LANGUAGE plpgsql AS $b$ BEGIN PERFORM public.trap('aclexplode'); RETURN QUERY SELECT * FROM pg_catalog.aclexplode($1); END $b$;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS $b$ BEGIN PERFORM public.trap('now'); RETURN pg_catalog.now(); END $b$;
CREATE FUNCTION public.pg_extension_config_dump(regclass, text) RETURNS void LANGUAGE plpgsql AS $b$ BEGIN PERFORM public.trap('pg_extension_config_dump'); PERFORM pg_catalog.pg_extension_config_dump($1, $2); END $b$;
CREATE FUNCTION public.trap_sfunc(bigint, anyelement) RETURNS bigint LANGUAGE plpgsql AS $b$ BEGIN PERFORM public.trap('aggregate'); RETURN 0; END $b$;
CREATE FUNCTION public.trap_sfunc_star(bigint) RETURNS bigint LANGUAGE plpgsql AS $b$ BEGIN PERFORM public.trap('count(*)'); RETURN 0; END $b$;
CREATE FUNCTION public.trap_sfunc_text(text, text, text) RETURNS text LANGUAGE plpgsql AS $b$ BEGIN PERFORM public.trap('string_agg'); RETURN ''; END $b$;
CREATE AGGREGATE public.count(*) (SFUNC = public.trap_sfunc_star, STYPE = bigint, INITCOND = '0');
CREATE AGGREGATE public.count(text) (SFUNC = public.trap_sfunc, STYPE = bigint);
CREATE AGGREGATE public.count(uuid) (SFUNC = public.trap_sfunc, STYPE = bigint);
CREATE AGGREGATE public.max(bigint) (SFUNC = public.trap_sfunc, STYPE = bigint);
CREATE AGGREGATE public.min(bigint) (SFUNC = public.trap_sfunc, STYPE = bigint);
CREATE AGGREGATE public.max(timestamp with time zone) (SFUNC = public.trap_sfunc, STYPE = bigint);
CREATE AGGREGATE public.sum(bigint) (SFUNC = public.trap_sfunc, STYPE = bigint);
CREATE AGGREGATE public.string_agg(text, text) (SFUNC = public.trap_sfunc_text, STYPE = text);
ALTER DATABASE hostile SET search_path = public, pg_catalog;
});
my $planted = sq('hostile', "SELECT count(*) FROM pg_operator WHERE oprnamespace = 'public'::regnamespace");
cmp_ok($planted, '>=', 100, "the owner planted $planted operators, and functions and aggregates, in public");
# positive control: a trap fires when called
$node->psql('hostile', "SELECT 'a'::text OPERATOR(public.=) 'a'::text", extra_params => [ '-U', 'scan_owner' ]);
is(sq('hostile', 'SELECT what || \' by \' || who::text FROM public.captured'), 'operator =(text, text) by scan_owner',
	'a planted operator, when called, records its caller');
sq('hostile', 'TRUNCATE public.captured');
($rc, $out, $err) = run_migration('hostile');
is($rc, 0, "the migration succeeds in the hostile owner's database") or diag($err);
unlike($err, qr/TRAP/, 'the migration runs none of the planted operators and functions') or diag($err);
is(sq('hostile', "SELECT coalesce(string_agg(what || ' by ' || who::text, ', '), '') FROM public.captured"), '',
	'none recorded itself');
is(sq('hostile', q{SELECT job_id, total_objects, queued, processing, succeeded, failed, total_findings
                   FROM job_summary ORDER BY job_id}), $old_counts, "and job_summary gives the system's counts there");

$node->stop;
done_testing();
