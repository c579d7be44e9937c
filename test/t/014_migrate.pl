# s3scan_jobs_migrate.sql on the scanner system's own database (test/fixtures/existing-deployment.sql,
# built by its non-superuser owner, with data): every row moves (finding ids kept), the rows the
# extension's constraints refuse are kept aside with their reason and counted, the findings
# sequence continues, the rights roles had are kept, the clients' statements work afterwards, the
# worker serves the database, and a second run is refused. A database not in that state (an unknown
# column, a missing table, a view of its own on the old objects) is refused unchanged, and a failure
# in the middle leaves it exactly as it was. The owner's planted operators and functions never run.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;

my $node = new_s3scan_node(
	'migrate',
	preload => 1,
	conf    => "s3scan_jobs.database = 'scans'\ns3scan_jobs.refresh_interval = '1s'\n");
$node->start;
my $fixture = "$FindBin::RealBin/../fixtures/existing-deployment.sql";
my $script  = $node->config_data('--sharedir') . '/extension/s3scan_jobs_migrate.sql';
ok(-f $script, 'make install put s3scan_jobs_migrate.sql beside the extension');

$node->safe_psql('postgres', q{
CREATE ROLE scan_owner LOGIN;
CREATE ROLE scanner_app LOGIN;
CREATE ROLE dashboard LOGIN;
CREATE DATABASE scans OWNER scan_owner;
});
sub as_owner { return sq('scans', $_[0], extra_params => [ '-U', 'scan_owner' ]); }
# The test's own queries pin their search_path: the owner puts public first on the database's.
sub sq
{
	my ($db, $sql, %opts) = @_;
	return $node->safe_psql($db, "SET search_path = pg_catalog, public;\n$sql", %opts);
}

# The system's database, built by its owner, with data.
my ($r, $o, $e) = $node->psql('scans', undef, extra_params => [ '-U', 'scan_owner', '-v', 'ON_ERROR_STOP=1', '-f', $fixture ]);
is($r, 0, "the scanner system's schema, run by its (non-superuser) owner") or diag($e);
as_owner(q{
INSERT INTO jobs (job_id, bucket, prefix, execution_arn, created_at, updated_at)
SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'b' || g % 2, 'p/',
       CASE WHEN g % 2 = 0 THEN 'arn:' || g END, '2024-01-01'::timestamptz + g * interval '1 h',
       '2024-01-02'::timestamptz + g * interval '1 h'
FROM generate_series(1, 9) g;
-- job 1: no objects yet; job 2: all done; the rest mixed
INSERT INTO job_objects (job_id, bucket, key, etag, status, last_error, updated_at)
SELECT ('00000000-0000-4000-8000-' || lpad((2 + g % 8)::text, 12, '0'))::uuid, 'b', 'k' || g, 'e' || g,
       CASE WHEN g % 8 = 0 THEN (ARRAY['succeeded','failed'])[1 + g % 2]
            ELSE (ARRAY['queued','processing','succeeded','failed'])[1 + g % 4] END,
       CASE WHEN g % 4 = 3 THEN 'AccessDenied' END, '2024-02-01'::timestamptz + g * interval '1 s'
FROM generate_series(1, 800) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
SELECT ('00000000-0000-4000-8000-' || lpad((2 + g % 8)::text, 12, '0'))::uuid, 'b', 'k' || g, 'e' || g,
       'ssn', '***', 'ctx', g, '2024-03-01'::timestamptz + g * interval '1 s'
FROM generate_series(1, 300) g;
-- what the old schema let in: findings of a job deleted since (no foreign key) ...
INSERT INTO jobs (job_id, bucket) VALUES ('00000000-0000-4000-8000-0000000000aa', 'gone');
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT '00000000-0000-4000-8000-0000000000aa', 'gone', 'g' || g, 'e', 'ssn', '***', g FROM generate_series(1, 4) g;
DELETE FROM jobs WHERE job_id = '00000000-0000-4000-8000-0000000000aa';
-- ... findings repeated with a null etag ...
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT '00000000-0000-4000-8000-000000000003', 'b', 'dup', NULL, 'email', '*', 7 FROM generate_series(1, 3);
-- ... a job without created_at, with an object, and an object without updated_at
INSERT INTO jobs (job_id, bucket, created_at) VALUES ('00000000-0000-4000-8000-0000000000bb', 'b', NULL);
INSERT INTO job_objects (job_id, bucket, key, etag, status) VALUES ('00000000-0000-4000-8000-0000000000bb', 'b', 'x', 'e', 'queued');
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES ('00000000-0000-4000-8000-000000000004', 'b', 'nul', 'e', 'queued', NULL);
DELETE FROM findings WHERE id = 10;
REFRESH MATERIALIZED VIEW job_progress;
GRANT SELECT, INSERT, UPDATE, DELETE ON jobs, job_objects, findings TO scanner_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO scanner_app;
GRANT SELECT ON job_summary, materialized_view_refresh_log TO scanner_app;
GRANT SELECT ON job_summary TO dashboard;
});

# The owner's traps, everywhere the migration compares or calls something.
as_owner(q{
CREATE TABLE public.captured (what text, who name DEFAULT current_user);
GRANT INSERT ON public.captured TO PUBLIC;
DO $plant$
DECLARE pair text[]; op text; n int := 0;
BEGIN
    FOREACH pair SLICE 1 IN ARRAY ARRAY[['text','text'], ['oid','oid'], ['"char"','"char"'], ['bigint','bigint'],
        ['uuid','uuid'], ['smallint','integer'], ['name','text'], ['text','name'], ['name','name'],
        ['bigint','integer'], ['integer','integer']] LOOP
        FOREACH op IN ARRAY ARRAY['=', '<>', '<', '>', '<=', '>=', '+'] LOOP
            n := n + 1;
            EXECUTE format($f$CREATE FUNCTION public.trap_%s(%s, %s) RETURNS %s LANGUAGE plpgsql AS
                $b$ BEGIN INSERT INTO public.captured (what) VALUES (%L); RETURN NULL; END $b$$f$,
                n, pair[1], pair[2], CASE WHEN op = '+' THEN pair[1] ELSE 'boolean' END,
                format('%s(%s, %s)', op, pair[1], pair[2]));
            EXECUTE format('CREATE OPERATOR public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = public.trap_%s)',
                           op, pair[1], pair[2], n);
        END LOOP;
    END LOOP;
END
$plant$;
CREATE FUNCTION public.format(text, VARIADIC text[]) RETURNS text LANGUAGE plpgsql AS
  $b$ BEGIN INSERT INTO public.captured (what) VALUES ('format'); RETURN NULL; END $b$;
CREATE FUNCTION public.quote_ident(text) RETURNS text LANGUAGE plpgsql AS
  $b$ BEGIN INSERT INTO public.captured (what) VALUES ('quote_ident'); RETURN $1; END $b$;
CREATE FUNCTION public.setval(regclass, bigint, boolean) RETURNS bigint LANGUAGE plpgsql AS
  $b$ BEGIN INSERT INTO public.captured (what) VALUES ('setval'); RETURN 0; END $b$;
CREATE FUNCTION public.trap_sfunc(bigint, anyelement) RETURNS bigint LANGUAGE plpgsql AS
  $b$ BEGIN INSERT INTO public.captured (what) VALUES ('aggregate'); RETURN 0; END $b$;
CREATE AGGREGATE public.count(uuid) (SFUNC = public.trap_sfunc, STYPE = bigint);
CREATE AGGREGATE public.max(bigint) (SFUNC = public.trap_sfunc, STYPE = bigint);
CREATE AGGREGATE public.min(bigint) (SFUNC = public.trap_sfunc, STYPE = bigint);
CREATE FUNCTION public.trap_sfunc2(bigint, text, text) RETURNS bigint LANGUAGE plpgsql AS
  $b$ BEGIN INSERT INTO public.captured (what) VALUES ('string_agg'); RETURN 0; END $b$;
CREATE AGGREGATE public.string_agg(text, text) (SFUNC = public.trap_sfunc2, STYPE = bigint);
ALTER DATABASE scans SET search_path = public, pg_catalog;
});

# A database's state: its catalog (relations, functions, schemas, extensions) and its rows.
sub fingerprint
{
	my ($db) = @_;
	my $print = $node->safe_psql($db, q{
SET search_path = pg_catalog;
SELECT pg_catalog.md5(pg_catalog.string_agg(x, ',' ORDER BY x)) FROM (
  SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text AS x FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  UNION ALL SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
  UNION ALL SELECT nspname::text FROM pg_namespace
  UNION ALL SELECT extname::text FROM pg_extension
  UNION ALL SELECT relname || coalesce(relacl::text, '') FROM pg_class WHERE relnamespace = 'public'::regnamespace) s;});
	for my $t (qw(jobs job_objects findings))
	{
		next if $node->safe_psql($db, "SELECT pg_catalog.to_regclass('public.$t') IS NULL") eq 't';
		$print .= "\n$t:" . $node->safe_psql($db,
			"SET search_path = pg_catalog; SELECT pg_catalog.md5(pg_catalog.string_agg(t::text, ',' ORDER BY t::text)) FROM public.$t t");
	}
	return $print;
}

sub migrate
{
	my ($db, @vars) = @_;
	return $node->psql($db, undef, extra_params => [ '-v', 'ON_ERROR_STOP=1', (map { ('-v', $_) } @vars), '-f', $script ]);
}

# --- refused, unchanged -------------------------------------------------------------------------
my %broken = (
	'an unknown column'   => [ 'ALTER TABLE job_objects ADD COLUMN shard int', qr/column job_objects\.shard is unknown/ ],
	'a missing table'     => [ 'DROP TABLE findings CASCADE', qr/table public\.findings is missing/ ],
	'a view of its own'   => [ 'CREATE VIEW my_report AS SELECT job_id FROM job_progress', qr/view public\.my_report \(depends on materialized view public\.job_progress\)/ ],
	'a foreign key of its own' => [ 'CREATE TABLE my_notes (job_id uuid REFERENCES jobs)', qr/constraint my_notes_job_id_fkey on table public\.my_notes \(depends on table public\.jobs\)/ ],
	'a trigger of its own' => [ 'CREATE FUNCTION my_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
	                            CREATE TRIGGER my_audit AFTER INSERT ON findings FOR EACH ROW EXECUTE FUNCTION my_audit()',
	                            qr/trigger my_audit on public\.findings/ ],
	'an index of its own' => [ 'CREATE INDEX my_idx ON job_objects (last_error)', qr/index public\.my_idx on public\.job_objects/ ],
);
my $n = 0;
for my $case (sort keys %broken)
{
	my $db = 'broken' . ++$n;
	$node->safe_psql('postgres', "CREATE DATABASE $db TEMPLATE scans OWNER scan_owner");
	$node->safe_psql($db, $broken{$case}[0], extra_params => [ '-U', 'scan_owner' ]);
	my $before = fingerprint($db);
	my ($rc, $out, $err) = migrate($db);
	isnt($rc, 0, "$case: refused");
	like($err, $broken{$case}[1], "$case: the message says why") or diag($err);
	is(fingerprint($db), $before, "$case: the database is unchanged");
}

# A failure in the middle (after the old tables were moved aside): all of it rolls back.
$node->safe_psql('postgres', 'CREATE DATABASE midway TEMPLATE scans OWNER scan_owner');
$node->safe_psql('midway', q{
CREATE FUNCTION fail_create_extension() RETURNS event_trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'no extensions today'; END $$;
CREATE EVENT TRIGGER no_extensions ON ddl_command_start WHEN TAG IN ('CREATE EXTENSION')
  EXECUTE FUNCTION fail_create_extension();
});
my $before = fingerprint('midway');
my ($rc, $out, $err) = migrate('midway');
isnt($rc, 0, 'a failure in the middle: the migration fails');
like($err, qr/no extensions today/, 'with the error that stopped it');
is(fingerprint('midway'), $before, 'and the database is exactly as before');

# --- the migration ---------------------------------------------------------------------------------
my $old = sq('scans', q{
SET search_path = pg_catalog, public;
SELECT (SELECT max(id) FROM findings),
       (SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s|%s', job_id, total_objects, queued_count, processing_count,
                                 succeeded_count, failed_count, total_findings, round(progress_percent, 2), last_object_update), E'\n' ORDER BY job_id)
        FROM job_progress WHERE job_id NOT IN ('00000000-0000-4000-8000-000000000003', '00000000-0000-4000-8000-000000000004',
                                               '00000000-0000-4000-8000-0000000000bb'))});
my ($old_max_id, $old_progress) = split /\|/, $old, 2;
my %kept = map {
	my $t = $_;
	$t => sq('scans', "SELECT string_agg(t::text, E'\\n' ORDER BY t::text) FROM public.$t t")
} qw(jobs findings);
my $kept_findings = sq('scans', q{SELECT string_agg(t::text, E'\n' ORDER BY t::text) FROM (
  SELECT id, job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at FROM public.findings f
  WHERE EXISTS (SELECT FROM public.jobs j WHERE j.job_id = f.job_id AND j.created_at IS NOT NULL AND j.updated_at IS NOT NULL)
    AND f.created_at IS NOT NULL
    AND f.id = (SELECT min(d.id) FROM public.findings d WHERE (d.bucket, d.key, d.etag, d.detector, d.byte_offset)
                                                      IS NOT DISTINCT FROM (f.bucket, f.key, f.etag, f.detector, f.byte_offset))) t});
my $kept_objects = sq('scans', q{SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s', job_id, bucket, key, etag, status, last_error, updated_at), E'\n' ORDER BY job_id, key)
  FROM public.job_objects WHERE updated_at IS NOT NULL AND job_id <> '00000000-0000-4000-8000-0000000000bb'});

# The same database migrated without the system's (job_id, status) index (-v status_index=off).
$node->safe_psql('postgres', 'CREATE DATABASE no_status_index TEMPLATE scans OWNER scan_owner');
($rc, $out, $err) = migrate('no_status_index', 'status_index=off');
is($rc, 0, 'the migration with -v status_index=off succeeds') or diag($err);
is(sq('no_status_index', "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'job_objects' AND indexdef LIKE '%(job_id, status)%'"),
	'0', 'with status_index=off, job_objects has no (job_id, status) index');
is(sq('no_status_index', 'SELECT count(*) FROM verify_job_counters()'), '0', 'and its counters are exact');

($rc, $out, $err) = migrate('scans');
is($rc, 0, 'the migration succeeds') or diag($err);
like($err, qr/moved 9 jobs, 800 objects, 300 findings; kept aside 1 jobs, 2 objects, 6 findings/, 'its output counts what moved and what was kept aside')
  or diag($err);

is(sq('scans', "SELECT extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 's3scan_jobs') FROM pg_extension WHERE extname = 's3scan_jobs'"), 't', 'the extension is installed, at its default version');
is(sq('scans', "SELECT string_agg(t::text, E'\\n' ORDER BY t::text) FROM public.jobs t"),
	join("\n", grep { !/0000000000bb/ } split /\n/, $kept{jobs}), 'every job, every column');
is(sq('scans', q{SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s', job_id, bucket, key, etag, status, last_error, updated_at), E'\n' ORDER BY job_id, key) FROM public.job_objects}),
	$kept_objects, 'every object: status, last_error, updated_at');
is(sq('scans', q{SELECT string_agg(t::text, E'\n' ORDER BY t::text) FROM (SELECT id, job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at FROM public.findings) t}),
	$kept_findings, 'every finding the extension accepts, every column, its id kept');
is( sq('scans', q{SELECT count(*) FROM public.findings f
      WHERE f.key = 'dup' OR f.job_id = '00000000-0000-4000-8000-0000000000aa'}), '1',
	'one of the null-etag duplicates moved (the lowest id), no orphan');
is( sq('scans', q{SELECT string_agg(reason || ':' || count, ', ' ORDER BY reason) FROM (
      SELECT reason, count(*) FROM s3scan_migration.rejected_findings GROUP BY 1) s}),
	'a duplicate of a finding with a lower id:2, its job does not exist:4', 'the refused findings are kept with their reason');
is( sq('scans', q{SELECT string_agg(reason || ':' || key, ', ' ORDER BY key) FROM s3scan_migration.rejected_job_objects}),
	'updated_at is null:nul, its job was rejected:x', 'the refused objects too');
is(sq('scans', 'SELECT count(*) FROM s3scan_migration.rejected_jobs'), '1', 'and the refused job');
is( sq('scans', q{SELECT count(*) FROM public.findings f JOIN s3scan_migration.rejected_findings r USING (id)}), '0',
	'no finding is in both places');
my $finding_ids = sq('scans', q{SELECT string_agg(id::text, ',' ORDER BY id) FROM (
    SELECT id FROM public.findings UNION ALL SELECT id FROM s3scan_migration.rejected_findings) s});
is($finding_ids, sq('scans', "SELECT string_agg(id::text, ',' ORDER BY id) FROM generate_series(1, $old_max_id) id WHERE id <> 10"),
	'every finding id kept, in one place or the other');

# the cache, the views
is( sq('scans', q{SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s|%s', job_id, total_objects, queued_count, processing_count,
        succeeded_count, failed_count, total_findings, round(progress_percent, 2), last_object_update), E'\n' ORDER BY job_id)
      FROM job_progress WHERE job_id NOT IN ('00000000-0000-4000-8000-000000000003', '00000000-0000-4000-8000-000000000004')}),
	$old_progress, "job_progress equals the system's (progress rounded as it did), last_object_update included");
is( sq('scans', q{SELECT count(*) FROM jobs j, job_status(j.job_id, true) s
      WHERE s.total_objects = (SELECT count(*) FROM job_objects o WHERE o.job_id = j.job_id)
        AND s.total_findings = (SELECT count(*) FROM findings f WHERE f.job_id = j.job_id)}), '9',
	'job_status counts the moved rows');
is(sq('scans', "SELECT count(*) FROM active_jobs_progress WHERE job_id = '00000000-0000-4000-8000-000000000001'"), '1',
	'active_jobs_progress includes the job still being listed (no objects)');
is(sq('scans', 'SELECT total_jobs, pending_jobs >= 1 FROM job_statistics'), '9|t', 'job_statistics answers');

# the counters: built by one recount after the copy (the copy ran with them off), on, exact
is(sq('scans', 'SELECT counter_maintenance()'), 't', 'counter maintenance is on after the migration');
is(sq('scans', 'SELECT count(*) FROM verify_job_counters()'), '0', 'the counters are exact');
is(sq('scans', "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relid = 'job_counter_deltas'::regclass"), '0',
	'the copy wrote no delta rows (the rows were counted once, by the recount)');

# the system's (job_id, status) index is kept, and the API's own real-time read uses it
is(sq('scans', "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexname = 'idx_job_objects_job_status'"),
	'CREATE INDEX idx_job_objects_job_status ON public.job_objects USING btree (job_id, status)',
	"the system's (job_id, status) index is kept");
like(sq('scans', q{SET enable_seqscan = off; SET enable_bitmapscan = off;
    EXPLAIN (COSTS OFF) SELECT status, count(*) FROM job_objects WHERE job_id = '00000000-0000-4000-8000-000000000003' GROUP BY status}),
	qr/Index Only Scan using idx_job_objects_job_status/, "the API's per-status count is an index-only scan of it");

# rights
my %rights = (
	"has_table_privilege('scanner_app', 'jobs', 'SELECT, INSERT, UPDATE, DELETE')"        => 't',
	"has_table_privilege('scanner_app', 'job_objects', 'SELECT, INSERT, UPDATE, DELETE')" => 't',
	"has_table_privilege('scanner_app', 'findings', 'SELECT, INSERT, UPDATE, DELETE')"    => 't',
	"has_sequence_privilege('scanner_app', 'job_objects_id_seq', 'USAGE')"                => 't',
	"has_sequence_privilege('scanner_app', 'findings_id_seq', 'USAGE')"                   => 't',
	"has_table_privilege('scanner_app', 'job_summary', 'SELECT')"                         => 't',
	"has_table_privilege('dashboard', 'job_summary', 'SELECT')"                           => 't',
	"has_table_privilege('dashboard', 'jobs', 'SELECT')"                                  => 'f',
	"has_table_privilege('public', 'job_progress', 'SELECT')"                             => 't',
	"has_table_privilege('public', 'job_statistics', 'SELECT')"                           => 't',
	"has_table_privilege('scan_owner', 'jobs', 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')" => 't',
	"has_function_privilege('scan_owner', 'refresh_job_progress()', 'EXECUTE')"           => 't',
	"has_function_privilege('public', 'refresh_job_progress()', 'EXECUTE')"               => 'f');
for my $check (sort keys %rights)
{
	is(sq('scans', "SELECT $check"), $rights{$check}, $check);
}

# the clients, afterwards, as themselves
# (the application sets its own search_path: the database's now puts the owner's traps first)
($rc, $out, $err) = $node->psql('scans', q{
SET search_path = public;
INSERT INTO jobs (job_id, bucket, prefix, execution_arn, created_at) VALUES ('00000000-0000-4000-8000-0000000000cc', 'b', '', NULL, now());
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
VALUES ('00000000-0000-4000-8000-0000000000cc', 'b', 'n1', 'e', 'queued', now()),
       ('00000000-0000-4000-8000-000000000003', 'b', 'k1', 'e1', 'queued', now()) ON CONFLICT DO NOTHING;
UPDATE job_objects SET status = 'succeeded', last_error = NULL, updated_at = now()
WHERE job_id = '00000000-0000-4000-8000-0000000000cc' AND bucket = 'b' AND key = 'n1' AND etag = 'e';
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
VALUES ('00000000-0000-4000-8000-0000000000cc', 'b', 'n1', 'e', 'ssn', '*', NULL, 1, now())
ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING RETURNING id > } . $old_max_id . q{;
SELECT total_objects, succeeded_count, data_source FROM job_status('00000000-0000-4000-8000-0000000000cc', true);
SELECT count(*) > 0 FROM job_status('00000000-0000-4000-8000-000000000003');
}, extra_params => [ '-U', 'scanner_app' ]);
is($rc, 0, "the clients' statements work for the application role") or diag($err);
is($out, "t\n1|1|real_time\nt", 'new findings continue past the old ids; job_status answers');
is(sq('scans', 'SELECT count(*) FROM job_summary', extra_params => [ '-U', 'dashboard' ]), '10',
	'the dashboard role reads job_summary');
ok(defined wait_for($node, 'scans', "SET search_path = pg_catalog, public;
    SELECT count(*) > 0 FROM refresh_history WHERE origin = 'worker' AND outcome = 'refreshed'"),
	'the worker, waiting for the extension, refreshes now');

# a second run
my $after = fingerprint('scans');
($rc, $out, $err) = migrate('scans');
isnt($rc, 0, 'a second run is refused');
like($err, qr/already installed in this database/, 'saying why');
is(fingerprint('scans'), $after, 'and changes nothing');

# (the roles' own statements resolve through public first and may call the owner's traps: that
# is between them and the owner; nothing may run as a superuser)
is(sq('scans', "SELECT coalesce(string_agg(what || ' by ' || who, ', '), '') FROM public.captured c
                JOIN pg_roles r ON r.rolname = c.who WHERE r.rolsuper"), '',
	"none of the owner's planted operators and functions ran as a superuser");

$node->stop;
done_testing();
