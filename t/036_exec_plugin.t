# Exec credential plugins (a kubeconfig user's "exec", as client-go runs
# them) through nginx: t/exec/kle-test-plugin plays the plugin, good or bad
# on request, and logs each run (argv, KUBERNETES_EXEC_INFO, environment,
# pid).  The emulator checks every bearer token, so a request it logs with
# a user was sent with the plugin's token.  The elector runs in a worker
# (master on): the plugin's exit must not reach nginx's SIGCHLD handler.

use Kle::Emulator;
use Kle::Harness qw(nginx_t_http);
use Kle::Status;
use Test::Nginx::Socket;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');
master_on();
workers(2);

our $Dir = $ENV{TEST_NGINX_EMULATOR_DIR};
our $Plugin = abs_path(dirname(__FILE__) . '/exec/kle-test-plugin');

# The kubeconfig's folder: the plugin is linked in as ./kle-test-plugin,
# which a command with a '/' finds relative to the kubeconfig.
our $Kc = tempdir('kle-exec-XXXXXX', TMPDIR => 1, CLEANUP => 1);
symlink $Plugin, "$Kc/kle-test-plugin" or die "symlink: $!";

sub write_file {
    my ($path, $text) = @_;
    open my $out, '>', $path or die "$path: $!";
    print $out $text;
    close $out;
}

sub slurp {
    my ($path) = @_;
    open my $in, '<', $path or return '';
    local $/;
    return scalar <$in>;
}

# One context per plugin: NAME => [apiVersion, interactiveMode, args...]
our %Users = (
    good      => ['v1', 'Never', 'token', '--token-file', "$Kc/token-good"],
    expiring  => ['v1', 'Never', 'token', '--token-file', "$Kc/token-expiring",
                  '--expires-in', '6'],
    refused   => ['v1', 'IfAvailable', 'token', '--token-file', "$Kc/token-refused"],
    beta      => ['v1beta1', undef, 'token', '--token-file', "$Kc/token-beta",
                  '--api-version', 'client.authentication.k8s.io/v1beta1'],
    cert      => ['v1', 'Never', 'cert', '--cert', "$Dir/client.crt",
                  '--key', "$Dir/client.key"],
    map({ $_ => ['v1', 'Never', $_] }
        qw(notjson wrongversion wrongkind nostatus certonly expired empty
           exit3 hang huge)),
);

sub kubeconfig {
    my $y = "apiVersion: v1\nkind: Config\ncurrent-context: good\n"
          . "clusters:\n- name: emu\n  cluster:\n"
          . "    server: $ENV{TEST_NGINX_API_URL}\n"
          . "    certificate-authority: $Dir/ca.crt\n"
          . "    extensions:\n"
          . "    - name: client.authentication.k8s.io/exec\n"
          . "      extension: {audience: sts.example.com, port: 8443}\n"
          . "    - name: example.com/other\n"
          . "      extension: {not: passed}\n"
          . "contexts:\n";
    $y .= "- name: $_\n  context: {cluster: emu, user: $_}\n" for sort keys %Users;
    $y .= "users:\n";
    for my $name (sort keys %Users) {
        my ($v, $mode, @args) = @{ $Users{$name} };
        push @args, '--log', "$Kc/$name.log";
        $y .= "- name: $name\n  user:\n    exec:\n"
            . "      apiVersion: client.authentication.k8s.io/$v\n"
            . "      command: ./kle-test-plugin\n"
            . "      args: [" . join(', ', map { "\"$_\"" } @args) . "]\n"
            . "      env: [{name: KLE_PLUGIN_NAME, value: \"$name\"}]\n"
            . "      provideClusterInfo: true\n"
            . (defined $mode ? "      interactiveMode: $mode\n" : '');
    }
    write_file("$Kc/kubeconfig", $y);
}

kubeconfig();

# The plugin's runs so far: one hash per run.
sub runs {
    my ($name) = @_;
    return [ map { json_decode($_) } grep { /\S/ } split /\n/, slurp("$Kc/$name.log") ];
}

sub cfg {
    my ($name, $extra) = @_;
    $extra //= '';
    return <<"_EOC_";
    leader_election web {
        lock            leases default/exec-$name;
        identity        x1;
        lease_duration  4s;
        renew_deadline  3s;
        retry_period    1s;
        api_server      kubeconfig $Kc/kubeconfig $name;
$extra    }
_EOC_
}

# The requests to the block's Lease, by the user the emulator saw.
sub users_of {
    my ($name, %f) = @_;
    my %u;
    $u{ $_->{user} // 'none' }++ for @{ requests(path => "/leases/exec-$name", %f) };
    return \%u;
}

our $Config = <<'_EOC_';
    location = /leader {
        leader_election_status;
    }
    location = /t {
        return 200 "$leader_election_is_leader\n";
    }
_EOC_

# A bad plugin: what it logs, that it is run again (backoff from the retry
# period), that no request goes out without a credential, and the status.
sub bad_plugin {
    my ($name, $runs) = @_;
    $runs //= 2;
    wait_until(12, sub { @{ runs($name) } >= $runs });
    my $n = @{ runs($name) };
    ok($n >= $runs, "$name: run again after failing ($n runs)");
    is_deeply(users_of($name), {}, "$name: no request sent without a credential");
    my $s = nginx_status();
    like($s && $s->{last_error}, qr/exec plugin "\.\/kle-test-plugin": /,
         "$name: the status page names the plugin's failure");
}

# The lines of this nginx's error log that name the block's plugin.
sub plugin_lines {
    return log_lines(qr/exec plugin .*/);
}

plan tests => 171;

run_tests();

__DATA__

=== TEST 1: a token from the plugin (v1, relative command, args, env, provideClusterInfo): every request carries it
--- log_level: debug
--- http_config eval
main::cfg('good')
--- config eval
$main::Config
--- init
write_file("$main::Kc/token-good", "exec-token-good\n");
add_token('exec-token-good', 'exec-good');
ok(wait_until(10, sub { (nginx_status() // {})->{is_leader} }), 'leads');
my $u = users_of('good');
is_deeply([keys %$u], ['exec-good'], 'every request with the plugin\'s token');
my $runs = runs('good');
is(scalar @$runs, 1, 'the plugin ran once (no expiry)');
my $r = $runs->[0] // {};
is_deeply($r->{argv}, ["$main::Kc/kle-test-plugin", 'token', '--token-file', "$main::Kc/token-good",
                       '--log', "$main::Kc/good.log"], 'argv: the command, then args');
my $info = json_decode($r->{info} // 'null') // {};
my $ca = encode_base64(slurp("$main::Dir/ca.crt"), '');
is_deeply($info, { kind => 'ExecCredential',
                   apiVersion => 'client.authentication.k8s.io/v1',
                   spec => { interactive => JSON::PP::false,
                             cluster => { server => $ENV{TEST_NGINX_API_URL},
                                          'certificate-authority-data' => $ca,
                                          config => { audience => 'sts.example.com',
                                                      port => 8443 } } } },
          'KUBERNETES_EXEC_INFO: the cluster and its exec extension, as client-go sends them');
is($r->{env}{KLE_PLUGIN_NAME}, 'good', 'env from the kubeconfig');
ok(defined $r->{stdin_tty} && !$r->{stdin_tty}, 'stdin is not a terminal');
is_deeply([grep { $_ > 4 } @{ $r->{fds} // [99] }], [],
          'no fd of nginx is inherited (0-2, and the plugin\'s own)');
--- request
GET /t
--- response_body
1
--- error_log
exec plugin "./kle-test-plugin" gave a token, without expiry
--- no_error_log
exec-token-good
[error]
[alert]
[crit]
SIGCHLD
unknown process



=== TEST 2: expirationTimestamp: the plugin runs again before it, the new token is used, leadership is kept
--- http_config eval
main::cfg('expiring')
--- config eval
$main::Config
--- init
write_file("$main::Kc/token-expiring", "exec-token-exp-1\n");
add_token('exec-token-exp-1', 'exec-exp-1');
add_token('exec-token-exp-2', 'exec-exp-2');
ok(wait_until(10, sub { (nginx_status() // {})->{is_leader} }), 'leads');
write_file("$main::Kc/token-expiring", "exec-token-exp-2\n");
ok(wait_until(12, sub { users_of('expiring')->{'exec-exp-2'} }),
   'requests with the second token');
my $runs = runs('expiring');
ok(@$runs >= 2 && $runs->[1]{time} < $runs->[0]{time} + 6,
   'run again before the first token expired ('
   . (@$runs >= 2 ? sprintf('%.1f s later', $runs->[1]{time} - $runs->[0]{time})
                  : scalar(@$runs) . ' run') . ')');
my $s = nginx_status() // {};
ok($s->{is_leader}, 'still leading');
--- request
GET /t
--- response_body
1
--- error_log eval
qr/exec plugin "\.\/kle-test-plugin" gave a token, valid until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/
--- no_error_log
stopped leading
exec-token-exp
[error]
[alert]
[crit]



=== TEST 3: a 401: the plugin runs again at once and its new token is used
--- http_config eval
main::cfg('refused')
--- config eval
$main::Config
--- init
write_file("$main::Kc/token-refused", "exec-token-ref-1\n");
add_token('exec-token-ref-1', 'exec-ref-1');
ok(wait_until(10, sub { (nginx_status() // {})->{is_leader} }), 'leads');
my $before = @{ runs('refused') };
write_file("$main::Kc/token-refused", "exec-token-ref-2\n");
add_token('exec-token-ref-2', 'exec-ref-2');
my $seq = last_seq();
revoke_token('exec-token-ref-1');
ok(wait_until(10, sub { users_of('refused', since => $seq)->{'exec-ref-2'} }),
   'requests with the new token after the 401');
is($before, 1, 'one run before the 401');
is(scalar @{ runs('refused') }, 2, 'one run more after it');
ok(wait_until(6, sub { (nginx_status() // {})->{is_leader} }), 'leading');
--- request
GET /t
--- response_body
1
--- error_log eval
qr/Unauthorized/
--- no_error_log
exec-token-ref
[alert]
[crit]



=== TEST 4: v1beta1 without interactiveMode (client-go defaults it to IfAvailable)
--- http_config eval
main::cfg('beta')
--- config eval
$main::Config
--- init
write_file("$main::Kc/token-beta", "exec-token-beta\n");
add_token('exec-token-beta', 'exec-beta');
ok(wait_until(10, sub { (nginx_status() // {})->{is_leader} }), 'leads');
is_deeply([keys %{ users_of('beta') }], ['exec-beta'], 'with the plugin\'s token');
my $info = json_decode(runs('beta')->[0]{info} // 'null') // {};
is($info->{apiVersion}, 'client.authentication.k8s.io/v1beta1',
   'KUBERNETES_EXEC_INFO in v1beta1');
--- request
GET /t
--- response_body
1
--- no_error_log
[error]
[alert]
[crit]



=== TEST 5: a client certificate and key from the plugin, no token
--- http_config eval
main::cfg('cert')
--- config eval
$main::Config
--- init
ok(wait_until(10, sub { (nginx_status() // {})->{is_leader} }), 'leads');
is_deeply([keys %{ users_of('cert') }], ['kle-client'],
          'every request authenticated by the plugin\'s certificate');
--- request
GET /t
--- response_body
1
--- error_log
gave a client certificate, without expiry
--- no_error_log
[error]
[alert]
[crit]



=== TEST 6: output that is not JSON
--- http_config eval
main::cfg('notjson')
--- config eval
$main::Config
--- init
bad_plugin('notjson');
--- request
GET /t
--- response_body
0
--- error_log
exec plugin "./kle-test-plugin": the output is not JSON
--- no_error_log
[alert]
[crit]
SIGCHLD



=== TEST 7: another apiVersion: refused, and its token never shown
--- http_config eval
main::cfg('wrongversion')
--- config eval
$main::Config
--- init
bad_plugin('wrongversion');
--- request
GET /t
--- response_body
0
--- error_log
the plugin answered apiVersion "client.authentication.k8s.io/v1alpha1", the kubeconfig asks for "client.authentication.k8s.io/v1"
--- no_error_log
secret-wrong-version
[alert]
[crit]



=== TEST 8: another kind
--- http_config eval
main::cfg('wrongkind')
--- config eval
$main::Config
--- init
bad_plugin('wrongkind');
--- request
GET /t
--- response_body
0
--- error_log
the plugin answered kind "Status", not "ExecCredential"
--- no_error_log
secret-wrong-kind
[alert]
[crit]



=== TEST 9: no status
--- http_config eval
main::cfg('nostatus')
--- config eval
$main::Config
--- init
bad_plugin('nostatus');
--- request
GET /t
--- response_body
0
--- error_log
the ExecCredential has no status
--- no_error_log
[alert]
[crit]



=== TEST 10: a certificate without its key
--- http_config eval
main::cfg('certonly')
--- config eval
$main::Config
--- init
bad_plugin('certonly');
--- request
GET /t
--- response_body
0
--- error_log
the ExecCredential's status holds a client certificate without a client key
--- no_error_log
[alert]
[crit]



=== TEST 11: an expirationTimestamp in the past
--- http_config eval
main::cfg('expired')
--- config eval
$main::Config
--- init
bad_plugin('expired');
--- request
GET /t
--- response_body
0
--- error_log
the credential expired already (expirationTimestamp "2020-01-01T00:00:00Z")
--- no_error_log
secret-expired
[alert]
[crit]



=== TEST 12: no output at all
--- http_config eval
main::cfg('empty')
--- config eval
$main::Config
--- init
bad_plugin('empty');
--- request
GET /t
--- response_body
0
--- error_log
exec plugin "./kle-test-plugin": no output (an ExecCredential was expected on stdout)
--- no_error_log
[alert]
[crit]



=== TEST 13: exit code 3: its stderr is logged, escaped
--- http_config eval
main::cfg('exit3')
--- config eval
$main::Config
--- init
bad_plugin('exit3');
--- request
GET /t
--- response_body
0
--- error_log
exec plugin "./kle-test-plugin": failed with exit code 3
exec plugin "./kle-test-plugin" stderr: could not reach the identity provider\x1b[31m\x0arun "login" first
--- no_error_log
[alert]
[crit]
SIGCHLD
unknown process



=== TEST 14: a plugin that hangs: the workers answer meanwhile, it is killed after 10 s, then run again
--- http_config eval
main::cfg('hang')
--- config eval
$main::Config
--- timeout: 30
--- init
wait_until(5, sub { @{ runs('hang') } });
my $pid = (runs('hang')->[0] // {})->{pid};
my @took;
for (1 .. 40) {
    push @took, (nginx_get('/t'))[2];
    sleep 0.1;
}
my ($ok, $why) = answered_promptly(\@took);
ok($ok, "workers answer while the plugin hangs: $why");
ok(wait_until(12, sub { plugin_lines()->[0] && plugin_lines()->[0] =~ /timed out/ }),
   'timed out');
ok($pid && wait_until(3, sub { !kill 0, $pid }), 'the plugin is gone');
bad_plugin('hang', 2);
--- request
GET /t
--- response_body
0
--- error_log
exec plugin "./kle-test-plugin": timed out after 10 s (killed)
--- no_error_log
[alert]
[crit]
SIGCHLD



=== TEST 15: a plugin that writes 1 MiB: cut off at 256 KiB
--- http_config eval
main::cfg('huge')
--- config eval
$main::Config
--- init
bad_plugin('huge');
--- request
GET /t
--- response_body
0
--- error_log
exec plugin "./kle-test-plugin": wrote more than 256 KiB to stdout (killed)
--- no_error_log
[alert]
[crit]



=== TEST 16: nginx -t: what cannot work is refused with the reason, and the plugin is never run
--- config
--- init
sub kc_with {
    my ($name, $exec, $more) = @_;
    write_file("$main::Kc/t-$name", "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        . "clusters:\n- name: emu\n  cluster:\n    server: $ENV{TEST_NGINX_API_URL}\n"
        . "contexts:\n- name: c\n  context: {cluster: emu, user: u}\n"
        . "users:\n- name: u\n  user:\n" . ($more // '') . "    exec:\n$exec");
    return nginx_t_http(<<"_EOC_");
    leader_election web {
        lock        leases default/t;
        api_server  kubeconfig $main::Kc/t-$name;
    }
_EOC_
}
my $v1 = "      apiVersion: client.authentication.k8s.io/v1\n";
my @cases = (
    [ 'always', $v1 . "      command: ./kle-test-plugin\n      interactiveMode: Always\n",
      qr/users\[0\]\.user\.exec\.interactiveMode "Always" needs a terminal, and the plugin runs without one here \(stdin is \/dev\/null\)/ ],
    [ 'nomode', $v1 . "      command: ./kle-test-plugin\n",
      qr/users\[0\]\.user\.exec\.interactiveMode must be given with client\.authentication\.k8s\.io\/v1 \(Never or IfAvailable\)/ ],
    [ 'missing', $v1 . "      command: kle-no-such-plugin\n      interactiveMode: Never\n"
                 . "      installHint: \"install it with: apt-get install kle-plugin\"\n",
      qr/users\[0\]\.user\.exec\.command: executable "kle-no-such-plugin" not found in PATH "[^"]*"; install it with: apt-get install kle-plugin in leader_election "web"/ ],
    [ 'relative', $v1 . "      command: ./no-such-plugin\n      interactiveMode: Never\n",
      qr/users\[0\]\.user\.exec\.command: "\Q$main::Kc\E\/no-such-plugin" No such file or directory/ ],
    [ 'alpha', "      apiVersion: client.authentication.k8s.io/v1alpha1\n"
               . "      command: ./kle-test-plugin\n",
      qr/users\[0\]\.user\.exec\.apiVersion "client\.authentication\.k8s\.io\/v1alpha1" is not supported/ ],
    [ 'nocommand', $v1 . "      interactiveMode: Never\n",
      qr/users\[0\]\.user\.exec\.command must be given to use an exec credential plugin/ ],
    [ 'token', $v1 . "      command: ./kle-test-plugin\n      interactiveMode: Never\n",
      qr/user "u": exec together with token: client-go uses the token and never runs the plugin; keep one of them/,
      "    token: abc\n" ],
);
for my $c (@cases) {
    my ($rc, $out) = kc_with($c->[0], $c->[1], $c->[3]);
    is($rc, 1, "nginx -t fails: $c->[0]");
    like($out, $c->[2], "the reason: $c->[0]");
}
my ($rc, $out) = kc_with('ok', $v1 . "      command: ./kle-test-plugin\n      interactiveMode: Never\n"
                               . "      args: [token, --log, $main::Kc/t-ok.log]\n");
is($rc, 0, 'nginx -t passes a working exec user') or diag $out;
ok(!-e "$main::Kc/t-ok.log", 'and never ran the plugin');
--- request
GET /t
--- error_code: 404



=== TEST 17: kle status runs the plugin as the elector does, and says why when it fails
--- config
--- init
my $kle = $ENV{KLE_BIN} // 'kle';
write_file("$main::Kc/token-good", "exec-token-good\n");
add_token('exec-token-good', 'exec-good');
put_lease('exec-cli', holder => 'someone', secs => 30, transitions => 2);
my $seq = last_seq();
my $out = `$kle status --kubeconfig $main::Kc/kubeconfig --context good --lock leases/default/exec-cli 2>&1`;
is($? >> 8, 0, 'kle status with an exec user') or diag $out;
like($out, qr/"holderIdentity":"someone"/, 'read the Lease');
is_deeply(users_of('cli', since => $seq), { 'exec-good' => 1 }, 'with the plugin\'s token');
$out = `$kle status --kubeconfig $main::Kc/kubeconfig --context exit3 --lock leases/default/exec-cli 2>&1`;
is($? >> 8, 1, 'a failing plugin: exit status 1');
like($out, qr/^kle: exec plugin "\.\/kle-test-plugin": failed with exit code 3$/m, 'and the reason');
like($out, qr/stderr: could not reach the identity provider\\x1b\[31m\\x0arun "login" first/,
     'its stderr, escaped');
--- request
GET /t
--- error_code: 404
