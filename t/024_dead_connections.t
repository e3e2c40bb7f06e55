# Connections that die silently (issue 13).  Three replicas, each behind
# its own t/chaos/proxy.py, reach the API server over HTTP/2 and TLS (an
# nginx with "http2" in front of the emulator, which speaks HTTP/1.1 only;
# libcurl negotiates h2 by ALPN and multiplexes every request of a replica
# onto one connection, as with a real kube-apiserver).  Then every open
# connection is frozen: held open, nothing passes, no FIN, no RST, as when
# a NAT entry expires; new connections pass.  The leader keeps its lease
# with no transition (checked on the Lease the server holds), and the
# followers' watches are back within the renew deadline, after which they
# send nothing again.

use Kle::Emulator;
use Kle::Nginx;
use Test::Nginx::Socket;
use File::Spec ();
use IPC::Open2 qw(open2);
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

our $Dir = $ENV{TEST_NGINX_EMULATOR_DIR};
our ($LD, $RD, $RP) = (4, 3, 0.5);
our @Names = qw(a b c);
my $Proxy = File::Spec->rel2abs('t/chaos/proxy.py');

# the HTTP/2 front: TLS with the emulator's certificate, every request
# passed on as it comes (watches too); the protocol of each in h2.log
my $H2Port = Kle::Nginx::free_port();
our $Front = Kle::Nginx->new(name => 'h2', http_config => <<"_EOC_");
    log_format proto '\$server_protocol \$request_method \$uri';
    server {
        listen 127.0.0.1:$H2Port ssl http2;
        ssl_certificate      $Dir/server.crt;
        ssl_certificate_key  $Dir/server.key;
        access_log @{[ "$ENV{TEST_NGINX_SERVROOT}_h2" ]}/logs/h2.log proto;
        location / {
            proxy_pass https://127.0.0.1:$ENV{TEST_NGINX_API_PORT};
            proxy_http_version 1.1;
            proxy_buffering off;
            proxy_read_timeout 600s;
        }
    }
_EOC_
$Front->start;

# one proxy, one token (so one user in the request log) per replica
our (%Px, %R, %User, $Leader);
for my $n (@Names) {
    my ($out, $in);
    my $pid = open2($out, $in, 'python3', $Proxy, '--upstream',
                    "127.0.0.1:$H2Port");
    my $line = <$out> // '';
    my ($port) = $line =~ /^port (\d+)/ or die "proxy: $line\n";
    $Px{$n} = { pid => $pid, out => $out, in => $in, port => $port };

    $User{$n} = "system:serviceaccount:default:dead-$n";
    add_token("token-dead-$n", $User{$n});

    my $kc = "$Dir/kubeconfig-dead-$n";
    open my $fh, '>', $kc or die "$kc: $!\n";
    print $fh <<"_EOC_";
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority: $Dir/ca.crt
users:
- name: u
  user:
    token: token-dead-$n
contexts:
- name: x
  context: {cluster: c, user: u, namespace: default}
current-context: x
_EOC_
    close $fh;

    $R{$n} = Kle::Nginx->new(name => $n, http_config => <<"_EOC_",
    leader_election web {
        lock            leases default/dead;
        identity        $n;
        lease_duration  ${LD}s;
        renew_deadline  ${RD}s;
        retry_period    @{[ $RP * 1000 ]}ms;
        api_server      kubeconfig $kc;
    }
_EOC_
        config => <<'_EOC_');
        location = /vars {
            return 200 "$leader_election_is_leader $leader_election_holder\n";
        }
_EOC_
}

sub proxy_cmd {
    my ($n, $cmd) = @_;
    my $px = $Px{$n};
    print { $px->{in} } "$cmd\n";
    $px->{in}->flush;
    my $ans = readline($px->{out}) // '';
    chomp $ans;
    return $ans;
}

END {
    for my $px (values %Px) {
        close $px->{in};
        waitpid $px->{pid}, 0;
    }
}

sub is_leader_of {
    my $n = shift;
    my ($code, $body) = nginx_get('/vars', $R{$n}->port, 1);
    return $code == 200 && $body =~ /^1 /;
}

sub by_user {
    my ($since, $n) = @_;
    return [ grep { ($_->{user} // '') eq $User{$n} }
             @{ requests(since => $since) } ];
}

sub is_watch { ($_[0]{query} // '') =~ /(?:^|&)watch=1/ }

sub microtime {
    my ($y, $mo, $d, $h, $mi, $s) = $_[0] =~
        /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):([\d.]+)Z$/ or return undef;
    require Time::Local;
    return Time::Local::timegm(0, $mi, $h, $d, $mo - 1, $y) + $s;
}

sub scenario {
    $_->start for values %R;
    my $leader = wait_until(10, sub {
        my $s = lease_spec('default', 'dead') or return;
        return $s->{holderIdentity};
    });
    ok($leader, "a leader: " . ($leader // 'none'));
    my @followers = grep { $_ ne $leader } @Names;

    # every follower watching, then a quiet period
    my $t0 = last_seq();
    wait_until(10, sub {
        !grep { my $f = $_; !grep { is_watch($_) } @{ by_user(0, $f) } }
            @followers
    });
    sleep 2;
    my $before = lease_spec('default', 'dead');

    my @h2 = do {
        open my $in, '<', "$ENV{TEST_NGINX_SERVROOT}_h2/logs/h2.log" or die $!;
        <$in>
    };
    my @h1 = grep { !/^HTTP\/2\.0 / } @h2;
    ok(@h2 >= 3 && !@h1,
       scalar(@h2) . ' requests so far, every one over HTTP/2');

    # freeze every open connection of every replica; new ones pass
    my $frozen_seq = last_seq();
    my $frozen = time;
    proxy_cmd($_, 'freeze') for @Names;

    my (%holders, %trans, @renew, @not_leading, @others_leading);
    my $last_change = $frozen;
    my $renew = $before->{renewTime};
    my $max_gap = 0;
    while (time - $frozen < 3 * $LD) {
        my $s = lease_spec('default', 'dead');
        $holders{$s->{holderIdentity} // ''}++;
        $trans{$s->{leaseTransitions} // -1}++;
        if ($s->{renewTime} ne $renew) {
            my $gap = time - $last_change;
            $max_gap = $gap if $gap > $max_gap;
            $last_change = time;
            $renew = $s->{renewTime};
        }
        push @not_leading, sprintf('%.2f', time - $frozen)
            unless is_leader_of($leader);
        for my $f (@followers) {
            push @others_leading, $f if is_leader_of($f);
        }
        sleep 0.1;
    }
    my $gap = time - $last_change;
    $max_gap = $gap if $gap > $max_gap;

    is(join(',', sort keys %holders), $leader, 'the Lease named the leader throughout');
    is(join(',', sort keys %trans), $before->{leaseTransitions},
       "leaseTransitions stayed $before->{leaseTransitions}");
    ok($max_gap < $RD, sprintf('renewTime advanced: at most %.2f s between renewals', $max_gap));
    ok(microtime($renew) - microtime($before->{renewTime}) > 2 * $LD,
       "renewTime moved on: $before->{renewTime} .. $renew");
    is(scalar(@not_leading), 0, 'the leader led at every sample'
       . (@not_leading ? " (not at @not_leading[0 .. ($#not_leading > 9 ? 9 : $#not_leading)])" : ''));
    is(scalar(@others_leading), 0, 'no follower ever led');

    for my $f (@followers) {
        my ($w) = grep { is_watch($_) } @{ by_user($frozen_seq, $f) };
        my $took = $w ? $w->{time} - $frozen : undef;
        ok(defined $took && $took <= $RD + 0.5,
           "$f watches again within the renew deadline ("
           . (defined $took ? sprintf('%.2f s', $took) : 'never') . ')');
    }

    # steady state again: the last lease of the run
    my $since = time - $LD;
    for my $f (@followers) {
        my @late = grep { $_->{time} >= $since } @{ by_user($frozen_seq, $f) };
        is(scalar(@late), 0, "$f sends nothing in the last ${LD} s"
           . (@late ? ': ' . join(' ', map { "$_->{method} $_->{path}?$_->{query}" } @late) : ''));
    }
    my @lget = grep { $_->{time} >= $since && $_->{method} ne 'PUT' }
        @{ by_user($frozen_seq, $leader) };
    is(scalar(@lget), 0, "the leader only renews in the last ${LD} s"
       . (@lget ? ': ' . join(' ', map { "$_->{method} $_->{path}?$_->{query}" } @lget) : ''));
    my @puts = grep { $_->{method} eq 'PUT' && $_->{time} >= $since }
        @{ by_user($frozen_seq, $leader) };
    ok(@puts >= $LD / $RP - 2, scalar(@puts) . " renewals in the last ${LD} s");
    $Leader = $leader;
}

# The watch is refused (403) for a while, as right after an API server
# restart: retried with a backoff up to a retry period, never abandoned.
sub refused_watch {
    my @followers = grep { $_ ne $Leader } @Names;
    my $before = lease_spec('default', 'dead');
    my $seq = last_seq();
    forbid(resource => 'leases', verbs => ['watch']);
    close_watches();
    sleep 4 * $RP;
    for my $f (@followers) {
        my @w = grep { is_watch($_) } @{ by_user($seq, $f) };
        my @bad = grep { ($_->{code} // 0) != 403 } @w;
        ok(@w >= 3 && !@bad, "$f: its watch refused " . scalar(@w)
           . " times in " . (4 * $RP) . " s, tried again each time");
        my $log = $R{$f}->error_log;
        my @refused = $log =~ /watching the lock was refused \(HTTP 403\); following by polling, and trying again \(RBAC: watch on leases\)/g;
        is(scalar(@refused), 1, "$f: the refusal logged once");
    }

    my $allowed = last_seq();
    my $t = time;
    clear_forbid();
    my $ok = wait_until(3, sub {
        !grep { my $f = $_; !grep { is_watch($_) && $_->{watch} }
                    @{ by_user($allowed, $f) } } @followers
    });
    ok($ok, sprintf('the followers watch again once allowed (%.2f s)', time - $t));

    sleep 1;
    my $quiet = last_seq();
    sleep 4 * $RP;
    for my $f (@followers) {
        my @sent = @{ by_user($quiet, $f) };
        is(scalar(@sent), 0, "$f then sends nothing"
           . (@sent ? ': ' . join(' ', map { "$_->{method} $_->{path}?$_->{query}" } @sent) : ''));
        like($R{$f}->error_log, qr/watching the lock again/, "$f: logged that it watches again");
    }
    my $after = lease_spec('default', 'dead');
    is("$after->{holderIdentity} $after->{leaseTransitions}",
       "$before->{holderIdentity} $before->{leaseTransitions}", 'the same leader, no transition');

    $_->stop for values %R;
}

plan tests => 32;

run_tests();

__DATA__

=== TEST 1: every open connection dies silently: the leader keeps its lease, the followers watch again
--- config
    location = /t { return 200 "done\n"; }
--- init
main::scenario();
--- request
GET /t
--- response_body
done
--- no_error_log
[alert]
[crit]



=== TEST 2: the watch is refused for a while: tried again, never abandoned
--- config
    location = /t { return 200 "done\n"; }
--- init
main::refused_watch();
--- request
GET /t
--- response_body
done
--- no_error_log
[alert]
[crit]
