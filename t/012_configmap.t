# The ConfigMap lock: client-go's record in the annotation
# control-plane.alpha.kubernetes.io/leader (leaderTransitions, a number for
# leaseDurationSeconds, RFC 3339 times); the ConfigMap's other annotations,
# labels and data survive every write.  A record written by the official
# Python client (leaseDurationSeconds a string, str(datetime) times, no
# leaderTransitions) is read without error: the instance follows it for a
# full lease, then takes over with leaderTransitions 1.

use Kle::Emulator;
use Kle::Status;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

our $Leader = 'control-plane.alpha.kubernetes.io/leader';
our $Addr = 'leader-election.nginx.org/address';

# A ConfigMap that exists before the lock does, with what must survive.
put_object('configmaps', 'kle-ns', 'cm-seeded', {
    apiVersion => 'v1', kind => 'ConfigMap',
    metadata => {
        name => 'cm-seeded', namespace => 'kle-ns',
        labels => { app => 'web' },
        annotations => { 'team' => 'web',
                         'example.com/note' => '{"a": 1}' },
    },
    data => { 'config.yaml' => "x: 1\n", other => 'value' },
});

# Held by the Python client's elector, whose holder never renews here.
put_object('configmaps', 'kle-ns', 'cm-python', {
    apiVersion => 'v1', kind => 'ConfigMap',
    metadata => {
        name => 'cm-python', namespace => 'kle-ns',
        annotations => {
            'team' => 'py',
            $Leader => '{"holderIdentity": "py-1", "leaseDurationSeconds": "3", '
                     . '"acquireTime": "2026-08-17 10:00:00", '
                     . '"renewTime": "2026-08-17 10:00:02.123456"}',
        },
    },
    data => { keep => 'me' },
});

our $HttpConfig = <<'_EOC_';
    leader_election web {
        lock            configmaps kle-ns/NAME;
        identity        c1;
        address         127.0.0.1:8090;
        lease_duration  LEASE;
        renew_deadline  RENEW;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
_EOC_

our $Config = <<'_EOC_';
    location = /leader {
        leader_election_status;
    }
    location = /vars {
        return 200 "$leader_election_is_leader $leader_election_holder $leader_election_transitions [$leader_election_holder_address]\n";
    }
_EOC_

# Long timings unless $short (a lease of 3 s); under valgrind longer still:
# a request's timeout is renew_deadline / 2, and valgrind's TLS handshakes
# on a loaded machine took more than 4 s.
our $Lease = $ENV{TEST_NGINX_USE_VALGRIND} ? 20 : 10;

sub http_config {
    my ($name, $short) = @_;
    (my $c = $HttpConfig) =~ s/NAME/$name/;
    my ($l, $r) = $short ? ('3s', '2s') : ("${Lease}s", ($Lease * 4 / 5) . 's');
    $c =~ s/LEASE/$l/;
    $c =~ s/RENEW/$r/;
    return $c;
}

# The leader annotation of a ConfigMap, its keys and value types checked:
# canonical JSON with the times as "<RFC3339>" when they have that form.
sub record {
    my ($name) = @_;
    my $o = get_object('configmaps', 'kle-ns', $name) or return 'no ConfigMap';
    my $text = $o->{metadata}{annotations}{$Leader} // return 'no annotation';
    my $r = json_decode($text) or return "not JSON: $text";
    for my $k (qw(acquireTime renewTime)) {
        $r->{$k} = '<RFC3339>'
            if ($r->{$k} // '') =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z\z/;
    }
    return Kle::Status::canon_json($r);
}

# The ConfigMap without the leader annotation, the address-holder one
# (checked by address_holder) and server fields; the instance nonce as
# "<instance>".
sub rest {
    my ($name) = @_;
    my $o = get_object('configmaps', 'kle-ns', $name) or return 'no ConfigMap';
    my %ann = %{ $o->{metadata}{annotations} || {} };
    delete $ann{$Leader};
    delete $ann{'leader-election.nginx.org/address-holder'};
    $ann{$Kle::Status::Instance} = '<instance>'
        if ($ann{$Kle::Status::Instance} // '') =~ /^[0-9a-f]{32}\z/;
    return Kle::Status::canon_json({ labels => $o->{metadata}{labels} || {},
                                     annotations => \%ann,
                                     data => $o->{data} || {} });
}

# interface.md: the writer of the address names itself beside it.
sub address_holder {
    my ($name) = @_;
    my $o = get_object('configmaps', 'kle-ns', $name) or return;
    Test::More::is($o->{metadata}{annotations}{'leader-election.nginx.org/address-holder'},
                   'c1', 'the address-holder annotation names c1');
}

plan tests => 36;

run_tests();

__DATA__

=== TEST 1: no ConfigMap yet: created with client-go's record
--- http_config eval
main::http_config('cm-new')
--- config eval
$main::Config
--- init
wait_until(10, sub { (nginx_var('/vars') // '') =~ /^1 / });
wait_until(5, sub { @{ requests(method => 'PUT', path => '/configmaps/cm-new') } });
is(main::record('cm-new'), Kle::Status::canon_json({
    holderIdentity => 'c1', leaseDurationSeconds => $main::Lease,
    acquireTime => '<RFC3339>', renewTime => '<RFC3339>',
    leaderTransitions => 0 }), "the leader annotation, as client-go writes it");
is(main::rest('cm-new'), Kle::Status::canon_json({
    labels => {}, annotations => { $main::Addr => '127.0.0.1:8090',
                                   $Kle::Status::Instance => '<instance>' }, data => {} }),
   'only the address annotation besides');
main::address_holder('cm-new');
my @posts = @{ requests(method => 'POST', path => '/namespaces/kle-ns/configmaps') };
is(scalar @posts, 1, 'created once');
is($posts[0]{code}, 201, 'created');
my @bad = grep { $_->{code} != 200 || !$_->{body}{metadata}{resourceVersion} }
          @{ requests(method => 'PUT', path => '/configmaps/cm-new') };
is(scalar @bad, 0, 'every update carries a resourceVersion and succeeded');
is(lease_spec('kle-ns', 'cm-new'), undef, 'no Lease was written');
--- request
GET /vars
--- response_body
1 c1 0 [127.0.0.1:8090]
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 2: an existing ConfigMap: other annotations, labels and data survive
--- http_config eval
main::http_config('cm-seeded')
--- config eval
$main::Config
--- init
wait_until(10, sub { (nginx_var('/vars') // '') =~ /^1 / });
wait_until(5, sub { @{ requests(method => 'PUT', path => '/configmaps/cm-seeded') } >= 2 });
is(main::record('cm-seeded'), Kle::Status::canon_json({
    holderIdentity => 'c1', leaseDurationSeconds => $main::Lease,
    acquireTime => '<RFC3339>', renewTime => '<RFC3339>',
    leaderTransitions => 1 }), 'the leader annotation (an empty record taken over: 1, as client-go counts)');
is(main::rest('cm-seeded'), Kle::Status::canon_json({
    labels => { app => 'web' },
    annotations => { team => 'web', 'example.com/note' => '{"a": 1}',
                     $Kle::Status::Instance => '<instance>',
                     $main::Addr => '127.0.0.1:8090' },
    data => { 'config.yaml' => "x: 1\n", other => 'value' } }),
   'labels, annotations and data kept after the acquisition and renews');
main::address_holder('cm-seeded');
--- request
GET /vars
--- response_body
1 c1 1 [127.0.0.1:8090]
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 3: a record the Python client wrote: read without error, followed for a full lease, then taken over with leaderTransitions 1
--- http_config eval
main::http_config('cm-python')
--- config eval
$main::Config
--- init
my $t0 = Time::HiRes::time();
wait_until(3, sub { my $s = nginx_status(); $s && $s->{holder} eq 'py-1' });
is(nginx_var('/vars'), "0 py-1 0 []\n", 'following py-1');
my $s = nginx_status();
is($s->{last_error}, undef, 'no error reading the record');
$s = wait_until(8, sub { my $s = nginx_status(); $s && $s->{is_leader} && $s });
my $took = Time::HiRes::time() - $t0;
# the record's lease (3 s) counts, not this instance's (10 s)
ok($s && $took >= 2.9, sprintf('not before the lease (3 s) ran out: %.2f s', $took));
# t0 is before nginx's first read; valgrind slows that start-up down
my $slack = $ENV{TEST_NGINX_USE_VALGRIND} ? 2 : 0.5;
ok($s && $took < 3 + 2.2 + $slack, sprintf('and within a retry after it: %.2f s', $took));
is(main::record('cm-python'), Kle::Status::canon_json({
    holderIdentity => 'c1', leaseDurationSeconds => $main::Lease,
    acquireTime => '<RFC3339>', renewTime => '<RFC3339>',
    leaderTransitions => 1 }), "now client-go's record, leaderTransitions 1");
is(main::rest('cm-python'), Kle::Status::canon_json({
    labels => {}, annotations => { team => 'py', $main::Addr => '127.0.0.1:8090',
                                   $Kle::Status::Instance => '<instance>' },
    data => { keep => 'me' } }), 'the rest kept');
main::address_holder('cm-python');
is_deeply(log_lines(qr/leader_election "web": .*/),
          ['leader_election "web": leader is now "py-1" (transitions 0)',
           'leader_election "web": leader is now "c1" (transitions 1)',
           'leader_election "web": started leading (transitions 1)'],
          'what the module logged');
--- request
GET /vars
--- response_body
1 c1 1 [127.0.0.1:8090]
--- no_error_log
[error]
[warn]
[alert]
[crit]
