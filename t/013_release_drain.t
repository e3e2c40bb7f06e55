# A release revokes the published claim before the release request
# leaves: once "nginx -s quit" has the elector release the lock, no worker
# of the instance says is_leader 1, even one that still drains a slow
# request and even if the API server never answers the release.  A worker
# 0 that drains requests of its own releases at its next tick (within
# retry_period), not when they are done.
#
# The instances under test are Kle::Nginx ones (a master with workers,
# quit in the middle of a block); the slow requests are proxied to the
# emulator's /version with a latency fault, and report the variable as
# evaluated when their answer comes (add_header), seconds after the quit.

use Kle::Emulator;
use Kle::Nginx;
use Test::Nginx::Socket;
use IO::Select ();
use IO::Socket::INET ();
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

our $SlowPort = Kle::Nginx::free_port();

# An instance on lock $lock with $workers workers; /slow answers after the
# emulator's /version, with "X-Leader: $leader_election_is_leader $pid".
sub instance {
    my ($name, $lock, $workers) = @_;
    my $api = $ENV{TEST_NGINX_API_PORT};
    my $slow = <<"_EOC_";
        location = /slow {
            proxy_pass https://127.0.0.1:$api/version;
            add_header X-Leader "\$leader_election_is_leader \$pid";
        }
_EOC_
    return Kle::Nginx->new(
        name => $name, master => 1, workers => $workers,
        log_level => 'debug',
        http_config => <<"_EOC_",
    leader_election web {
        lock            leases default/$lock;
        identity        $name;
        lease_duration  20s;
        renew_deadline  15s;
        retry_period    1s;
        api_server      kubeconfig $ENV{TEST_NGINX_KUBECONFIG};
    }

    server {
        listen 127.0.0.1:$main::SlowPort reuseport;
$slow
    }
_EOC_
        config => <<"_EOC_");
        location = /leader {
            leader_election_status;
        }
$slow
_EOC_
}

# Sends GET /slow on $n connections; returns the sockets.
sub send_slow {
    my ($port, $n) = @_;
    my @socks;
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Proto => 'tcp',
                                      Timeout => 2)
            or die "connect to $port: $!\n";
        $s->autoflush(1);
        print $s "GET /slow HTTP/1.0\r\nHost: localhost\r\n\r\n";
        push @socks, $s;
    }
    return @socks;
}

# Reads every answer (at most $secs): hashes with code, leader, pid and
# time (when the answer was complete).
sub read_slow {
    my ($secs, @socks) = @_;
    my %buf = map { fileno($_) => '' } @socks;
    my %done;
    my $sel = IO::Select->new(@socks);
    my $deadline = time + $secs;
    while ($sel->count && time < $deadline) {
        for my $s ($sel->can_read($deadline - time)) {
            my $got = sysread($s, my $chunk, 65536);
            if ($got) {
                $buf{fileno($s)} .= $chunk;
                next;
            }
            $done{fileno($s)} = time;
            $sel->remove($s);
        }
    }
    my @out;
    for my $s (@socks) {
        my $text = $buf{fileno($s)};
        my ($code) = $text =~ m{^HTTP/1\.\d (\d+)};
        my ($leader, $pid) = $text =~ m{^X-Leader: (\S+) (\d+)\r?$}mi;
        push @out, { code => $code // 0, leader => $leader // '?',
                     pid => $pid // 0, time => $done{fileno($s)} // 0 };
        close $s;
    }
    return @out;
}

plan tests => 28;

run_tests();

__DATA__

=== TEST 1: quit: every draining worker stops claiming when the release is requested, unanswered as it is
--- config
    location = /t {
        return 200 "$leader_election_is_leader\n";
    }
--- init
my $n = main::instance('drain1', 'drain1', 2);
$n->start;
wait_until(10, sub { my $s = $n->status; $s && $s->{is_leader} })
    or die "drain1 did not lead:\n" . $n->error_log;
my $elector = $n->status->{elector_pid};
add_fault(kind => 'latency', ms => 4000, path => '/version');
my @socks = main::send_slow($main::SlowPort, 12);
sleep 0.5;
add_fault(kind => 'stall', method => 'PUT', path => '/leases/drain1');
my $since = last_seq();
my $tq = time;
kill 'QUIT', $n->pid;
my @answers = main::read_slow(15, @socks);
wait_until(10, sub { !$n->running });
clear_faults();
is(join(',', map { $_->{code} } @answers), join(',', (200) x 12),
   'all 12 slow requests were answered');
my $first = (sort { $a <=> $b } map { $_->{time} } @answers)[0];
ok($first - $tq > 2.5, sprintf('the first answer came %.2f s after the quit', $first - $tq));
is(join(',', map { $_->{leader} } @answers), join(',', ('0') x 12),
   'every draining worker said is_leader 0');
my @others = grep { $_->{pid} && $_->{pid} != $elector } @answers;
ok(scalar @others, scalar(@others) . ' of 12 answers came from the worker that does not run the elector');
my @rel = grep { ($_->{body}{spec}{holderIdentity} // 'x') eq '' }
          @{ requests(since => $since, method => 'PUT', path => '/leases/drain1') };
is(scalar @rel, 1, 'the release was sent once');
ok(@rel && $rel[0]{time} < $first, 'the release left before the first answer');
is($rel[0]{code} // 0, 0, 'the API server never answered it');
my $log = $n->error_log;
like($log, qr/leader_election "web": claim term=0 until=\d+ now=\d+/,
     'the claim was logged');
like($log, qr/leader_election "web": claim none now=\d+/,
     'its revocation was logged');
like($log, qr/\[warn\] .*leader_election "web": the lock was not released, it expires after lease_duration/,
     'the failed release was logged');
unlike($log, qr/\[(?:alert|crit|emerg)\]/, 'no alert, crit or emerg');
--- request
GET /t
--- response_body
0
--- no_error_log
[error]
[alert]



=== TEST 2: quit: a worker 0 that drains its own request releases at its next tick, not when the request is done
--- config
    location = /t {
        return 200 "$leader_election_is_leader\n";
    }
--- init
my $n = main::instance('drain2', 'drain2', 1);
$n->start;
wait_until(10, sub { my $s = $n->status; $s && $s->{is_leader} })
    or die "drain2 did not lead:\n" . $n->error_log;
add_fault(kind => 'latency', ms => 4000, path => '/version');
my @socks = main::send_slow($n->port, 1);
sleep 0.5;
my $tq = time;
kill 'QUIT', $n->pid;
my $released = wait_until(5, sub {
    my $spec = lease_spec('default', 'drain2');
    $spec && $spec->{holderIdentity} eq '' ? time : 0 });
my $draining = $n->running;
my @answers = main::read_slow(10, @socks);
wait_until(10, sub { !$n->running });
clear_faults();
ok($released, 'the Lease holds the release record');
ok($released && $released - $tq < 2.2,
   sprintf('released %.2f s after the quit (retry_period 1 s)', $released - $tq));
ok($draining, 'while nginx still ran');
is($answers[0]{code}, 200, 'the slow request was answered');
ok($answers[0]{time} > $released, sprintf('%.2f s after the release', $answers[0]{time} - $released));
is($answers[0]{leader}, '0', 'it said is_leader 0');
my $log = $n->error_log;
like($log, qr/leader_election "web": stopped leading/, 'stopped leading');
unlike($log, qr/the lock was not released/, 'no failed release');
unlike($log, qr/\[(?:alert|crit|emerg)\]/, 'no alert, crit or emerg');
--- request
GET /t
--- response_body
0
--- no_error_log
[error]
[alert]
