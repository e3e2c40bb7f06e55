# Hooks: on_new_leader, on_started_leading and on_stopped_leading POST a
# JSON body (event, election, identity, holder, transitions, time) from the
# elector, once per event, in order.  A hook that fails (connection
# refused, an error answer, no answer at all) is logged and changes nothing
# in the election.

use Kle::Emulator;
use Kle::Hooks;
use Kle::Status;
use Kle::Harness qw(quit_test_nginx);
use Test::Nginx::Socket;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

# Accepts connections into its backlog and never answers.
our $Silent = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                    Listen => 16, Proto => 'tcp')
    or die "listen: $!";
$ENV{TEST_NGINX_SILENT_PORT} = $Silent->sockport;

# The hooks received, each as "event holder transitions", in the order
# they were fired (their "time"); checks every field of each.
sub fired {
    my ($identity) = @_;
    my @h = sort { $a->{body}{time} cmp $b->{body}{time}
                   || $a->{seq} <=> $b->{seq} } @{ hooks_received() };
    my @out;
    for my $h (@h) {
        my $b = $h->{body};
        my @keys = sort keys %$b;
        my $bad = '';
        $bad .= ' keys=' . join(',', @keys)
            if "@keys" ne 'election event holder identity time transitions';
        $bad .= " method=$h->{method}" if $h->{method} ne 'POST';
        $bad .= " type=" . ($h->{content_type} // '')
            if ($h->{content_type} // '') ne 'application/json';
        $bad .= " path=$h->{path}" if $h->{path} ne "/hooks/$b->{event}";
        $bad .= " election=$b->{election}" if $b->{election} ne 'web';
        $bad .= " identity=$b->{identity}" if $b->{identity} ne $identity;
        $bad .= " time=$b->{time}" unless is_microtime($b->{time});
        $bad .= " transitions=$b->{transitions}"
            unless $b->{transitions} =~ /^\d+\z/;
        push @out, "$b->{event} holder=$b->{holder} transitions=$b->{transitions}$bad";
    }
    return join "\n", @out;
}

# The whole error log (every block of this nginx) matched by grep_error_log:
# a block checks the sequence so far, not a line an earlier block wrote.
our $Leading = qr/(?<=leader_election "web": )(?:started|stopped) leading.*/;

plan tests => 54;

run_tests();

# The last block's nginx quits: the release fires stopped_leading (the lock
# is then free: new_leader with no holder).
{
    hooks_clear();
    my $pid = quit_test_nginx(5);
    ok(!kill(0, $pid), 'nginx exited');
    is(lease_spec('default', 'hooks-quit')->{holderIdentity}, '', 'released');
    is(fired('h7'), "stopped_leading holder= transitions=0\nnew_leader holder= transitions=0",
       'the release fired stopped_leading, then new_leader (none)');
}

__DATA__

=== TEST 1: acquiring the lock: new_leader then started_leading, once each
--- http_config
    leader_election web {
        lock                leases default/hooks;
        identity            h1;
        lease_duration      3s;
        renew_deadline      2s;
        retry_period        1s;
        api_server          kubeconfig $TEST_NGINX_KUBECONFIG;
        on_new_leader       http://127.0.0.1:$TEST_NGINX_HOOK_PORT/hooks/new_leader;
        on_started_leading  http://127.0.0.1:$TEST_NGINX_HOOK_PORT/hooks/started_leading;
        on_stopped_leading  http://127.0.0.1:$TEST_NGINX_HOOK_PORT/hooks/stopped_leading;
    }
--- config
    location = /leader {
        leader_election_status;
    }
    location = /vars {
        return 200 "$leader_election_is_leader\n";
    }
--- init
# (the receiver got nothing before this block's nginx started)
wait_until(5, sub { @{ hooks_received() } >= 2 });
# two renews more: they fire nothing
sleep 2.2;
is(main::fired('h1'), "new_leader holder=h1 transitions=0\nstarted_leading holder=h1 transitions=0",
   'the hooks fired on acquiring');
--- request
GET /vars
--- response_body
1
--- no_error_log
hook
[error]
[alert]
[crit]



=== TEST 2: renews failing past renew_deadline: stopped_leading, once
--- init
hooks_clear();
add_fault(kind => 'status', code => 503, method => 'PUT', path => '/leases/hooks');
wait_until(4, sub { @{ hooks_received() } >= 1 });
sleep 1.2;
is(main::fired('h1'), "stopped_leading holder=h1 transitions=0",
   'stopped_leading fired once');
--- request
GET /vars
--- response_body
0
--- grep_error_log eval: $main::Leading
--- grep_error_log_out
started leading (transitions 0)
stopped leading
--- no_error_log
hook
[error]
[alert]
[crit]



=== TEST 3: the API server answers again: started_leading, once (no new leader: still h1)
--- init
hooks_clear();
clear_faults();
wait_until(5, sub { @{ hooks_received() } >= 1 });
sleep 1.2;
is(main::fired('h1'), "started_leading holder=h1 transitions=0",
   'started_leading fired once');
--- request
GET /vars
--- response_body
1
--- grep_error_log eval: $main::Leading
--- grep_error_log_out
started leading (transitions 0)
stopped leading
started leading (transitions 0)
--- no_error_log
hook
[error]
[alert]
[crit]



=== TEST 4: another instance takes over after a release: new_leader names it
--- init
hooks_clear();
# h1 cannot renew; "h2" writes the Lease as a client-go candidate would
# once h1's lease expired.
add_fault(kind => 'status', code => 503, method => 'PUT', path => '/leases/hooks');
wait_until(4, sub { (nginx_var('/vars') // '') eq "0\n" });
# h2 writes once h1's elector has stepped down on its own (readers may see
# the claim's end a moment before the elector does, on a loaded machine)
wait_until(4, sub { grep { $_->{body}{event} eq 'stopped_leading' }
                         @{ hooks_received() } });
my $o = get_object('leases', 'default', 'hooks');
$o->{spec}{holderIdentity} = 'h2';
$o->{spec}{leaseTransitions} = 1;
put_object('leases', 'default', 'hooks', $o);
clear_faults();
wait_until(5, sub { @{ hooks_received() } >= 2 });
sleep 1.2;
is(main::fired('h1'), "stopped_leading holder=h1 transitions=0\nnew_leader holder=h2 transitions=1",
   'stopped_leading, then new_leader h2');
--- request
GET /vars
--- response_body
0
--- no_error_log
hook
[error]
[alert]
[crit]



=== TEST 5: a refused hook and an error answer are logged; the election goes on
--- http_config
    leader_election web {
        lock                leases default/hooks-fail;
        identity            h1;
        lease_duration      3s;
        renew_deadline      2s;
        retry_period        1s;
        api_server          kubeconfig $TEST_NGINX_KUBECONFIG;
        on_new_leader       http://127.0.0.1:$TEST_NGINX_HOOK_PORT/hooks/new_leader?code=500;
        on_started_leading  http://127.0.0.1:$TEST_NGINX_CLOSED_PORT/hooks/started_leading;
    }
--- config
    location = /vars {
        return 200 "$leader_election_is_leader $leader_election_holder\n";
    }
--- init
hooks_clear();
wait_until(5, sub { (nginx_var('/vars') // '') eq "1 h1\n" });
sleep 1.5;
--- request
GET /vars
--- response_body
1 h1
--- error_log eval
[qr/\[warn\] \d+#\d+: leader_election "web": hook new_leader to "http:\/\/127\.0\.0\.1:\d+\/hooks\/new_leader\?code=500" failed: HTTP 500$/,
 qr/\[warn\] \d+#\d+: leader_election "web": hook started_leading to "http:\/\/127\.0\.0\.1:$ENV{TEST_NGINX_CLOSED_PORT}\/hooks\/started_leading" failed: .*(?:refused|onnect)/]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 6: a hook that never answers holds nothing up and times out
--- http_config
    leader_election web {
        lock                leases default/hooks-silent;
        identity            h1;
        lease_duration      3s;
        renew_deadline      2s;
        retry_period        1s;
        api_server          kubeconfig $TEST_NGINX_KUBECONFIG;
        on_started_leading  http://127.0.0.1:$TEST_NGINX_SILENT_PORT/hooks/started_leading;
    }
--- config
    location = /vars {
        return 200 "$leader_election_is_leader $leader_election_holder\n";
    }
--- init
my $t0 = time;
wait_until(5, sub { (nginx_var('/vars') // '') eq "1 h1\n" });
my $n0 = @{ requests(method => 'PUT', path => '/leases/hooks-silent') };
my (@seen, @took);
while (time - $t0 < 3.5) {
    my ($code, $body, $took) = nginx_get('/vars');
    push @seen, $body if $body ne "1 h1\n";
    push @took, $took;
    sleep 0.1;
}
is(scalar @seen, 0, 'leading in every answer while the hook hangs');
my ($prompt, $how) = answered_promptly(\@took);
ok($prompt, "answering promptly meanwhile: $how");
my $n1 = @{ requests(method => 'PUT', path => '/leases/hooks-silent') };
ok($n1 - $n0 >= 2, 'renews went on while the hook hung (' . ($n1 - $n0) . ' PUTs)');
sleep 2.5;
--- request
GET /vars
--- response_body
1 h1
--- error_log eval
qr/\[warn\] \d+#\d+: leader_election "web": hook started_leading to "http:\/\/127\.0\.0\.1:$ENV{TEST_NGINX_SILENT_PORT}\/hooks\/started_leading" failed: .*[Tt]ime/
--- no_error_log
[error]
[alert]
[crit]



=== TEST 7: graceful shutdown: the release fires stopped_leading
--- http_config
    leader_election web {
        lock                leases default/hooks-quit;
        identity            h7;
        lease_duration      3s;
        renew_deadline      2s;
        retry_period        1s;
        api_server          kubeconfig $TEST_NGINX_KUBECONFIG;
        on_new_leader       http://127.0.0.1:$TEST_NGINX_HOOK_PORT/hooks/new_leader;
        on_started_leading  http://127.0.0.1:$TEST_NGINX_HOOK_PORT/hooks/started_leading;
        on_stopped_leading  http://127.0.0.1:$TEST_NGINX_HOOK_PORT/hooks/stopped_leading;
    }
--- config
    location = /vars {
        return 200 "$leader_election_is_leader $leader_election_holder\n";
    }
--- init
wait_until(5, sub { grep { $_->{body}{identity} eq 'h7'
                           && $_->{body}{event} eq 'started_leading' }
                    @{ hooks_received() } });
--- request
GET /vars
--- response_body
1 h7
--- no_error_log
[error]
[alert]
[crit]
