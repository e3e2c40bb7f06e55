#!/usr/bin/python3
"""Whom kle trusts with its credentials (lib/kle_http.c kle_http_set_creds,
lib/kle_creds.c kle_creds_check), against real TLS servers.

Two emulators: the cluster's (its CA is the one the kubeconfig names) and
an impostor whose certificate is signed by another CA, one that is in the
"system store".  That store is a throwaway: the impostor's CA bind-mounted
over /etc/ssl/certs (the default CA file and CA path libcurl was built
with) in a private mount namespace that ends with the command, so the
machine's own store is never touched.

- a configured CA is the only trust anchor (file or -data): the impostor
  is refused and gets no request, so never the token;
- no CA configured: the system's roots, as client-go; the impostor, in
  that store, is trusted (what "no CA" means, pinned);
- credentials over http:// and insecure-skip-tls-verify with a CA are
  configuration errors (exit 2, the rule named), nothing sent.
"""

import base64
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, 't', 'emulator'))

KLE = os.environ.get('KLE_BIN') or os.path.join(ROOT, 'build', 'kle')
MODULE = os.environ.get('TEST_NGINX_LOAD_MODULES') or os.path.join(
    ROOT, 'build', 'modules', 'ngx_http_leader_election_module.so')
NGINX = shutil.which('nginx', path='/usr/sbin:' + os.environ.get('PATH', ''))


def nginx_t(workdir, api_server):
    """nginx -t on one election with that api_server: (ok, output)."""
    conf = os.path.join(workdir, 'nginx.conf')
    os.makedirs(os.path.join(workdir, 'logs'), exist_ok=True)
    with open(conf, 'w') as f:
        f.write('load_module %s;\nerror_log %s/logs/error.log;\n'
                'pid %s/logs/nginx.pid;\nevents {}\nhttp {\n'
                '  leader_election web {\n    lock leases default/web;\n'
                '    identity a;\n    api_server %s;\n  }\n}\n'
                % (MODULE, workdir, workdir, api_server))
    p = subprocess.run([NGINX, '-t', '-p', workdir, '-c', conf],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True,
                       timeout=30)
    return p.returncode == 0, p.stdout
SYSTEM_CERTS = '/etc/ssl/certs'


def kle(args, store=None, timeout=30):
    """kle, with store (a folder) standing in for the system's CA store."""
    argv = [KLE] + list(args)
    if store is not None:
        argv = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
                'mount --bind "$0" %s && exec "$@"' % SYSTEM_CERTS,
                store] + argv
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def kubeconfig(path, server, token, ca=None, ca_data=None, insecure=False):
    lines = ['apiVersion: v1', 'kind: Config', 'current-context: c',
             'contexts: [{name: c, context: {cluster: c, user: u}}]',
             'users: [{name: u, user: {token: "%s"}}]' % token,
             'clusters:', '- name: c', '  cluster:',
             '    server: "%s"' % server]
    if ca:
        lines.append('    certificate-authority: "%s"' % ca)
    if ca_data:
        lines.append('    certificate-authority-data: "%s"' % ca_data)
    if insecure:
        lines.append('    insecure-skip-tls-verify: true')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def public_certs(d):
    """The impostor's certificates, from a CA of its own.  Its subject
    differs from the cluster CA's: OpenSSL looks issuers up by subject, so
    a same-named CA in the CA file would hide one in the CA path."""
    from kube_emulator import OPENSSL_CNF

    cnf = os.path.join(d, 'openssl.cnf')
    with open(cnf, 'w') as f:
        f.write(OPENSSL_CNF % 'IP:127.0.0.1,DNS:localhost')
    key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
           '-nodes']

    def run(*args):
        subprocess.run(('openssl',) + args, cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    run('req', '-x509', *key, '-keyout', 'ca.key', '-out', 'ca.crt', '-days',
        '2', '-subj', '/O=Some Public Trust/CN=Public Root CA', '-config',
        cnf, '-extensions', 'ca_ext')
    for name, ext in (('server', 'server_ext'), ('client', 'client_ext')):
        run('req', '-new', *key, '-keyout', name + '.key', '-out',
            name + '.csr', '-subj', '/CN=' + name, '-config', cnf)
        run('x509', '-req', '-in', name + '.csr', '-CA', 'ca.crt', '-CAkey',
            'ca.key', '-set_serial', '1' if name == 'server' else '2',
            '-days', '2', '-out', name + '.crt', '-extfile', cnf,
            '-extensions', ext)


def main(t):
    from kle_fixtures import keep_or_remove
    from kube_emulator import EmulatorProcess

    if not t.ok(os.access(KLE, os.X_OK), 'kle is built: ' + KLE,
                'make lib, or set KLE_BIN'):
        return
    workdir = tempfile.mkdtemp(prefix='kle-tls-')
    cluster = EmulatorProcess(os.path.join(workdir, 'cluster'))
    impostor_dir = os.path.join(workdir, 'impostor')
    impostor = EmulatorProcess(impostor_dir)
    lock = ['status', '--lock', 'leases/default/trust']

    def reached():
        return [r for r in impostor.requests()
                if not r['path'].startswith('/_emulator')]

    try:
        cluster.start()
        # the impostor knows the cluster's token: a request that reaches it
        # succeeds, so only TLS stands between the token and the impostor
        os.makedirs(impostor_dir)
        shutil.copy(os.path.join(cluster.dir, 'token'), impostor_dir)
        public_certs(impostor_dir)
        impostor.start()
        t.is_(impostor.token, cluster.token, 'the impostor accepts the token')

        store = os.path.join(workdir, 'store')
        os.makedirs(store)
        ca = os.path.join(impostor_dir, 'ca.crt')
        shutil.copy(ca, os.path.join(store, 'ca-certificates.crt'))
        h = subprocess.run(['openssl', 'x509', '-hash', '-noout', '-in', ca],
                           stdout=subprocess.PIPE, universal_newlines=True,
                           check=True).stdout.strip()
        shutil.copy(ca, os.path.join(store, h + '.0'))

        cluster_ca = os.path.join(cluster.dir, 'ca.crt')
        with open(cluster_ca, 'rb') as f:
            cluster_ca_data = base64.b64encode(f.read()).decode()
        imp = impostor.url

        store_ok = False
        if not (os.geteuid() == 0 and shutil.which('unshare')):
            t.skip('a private CA store', 'needs root and unshare --mount')
        else:
            p = subprocess.run(['unshare', '--mount', '--propagation',
                                'private', 'sh', '-c',
                                'mount --bind "$0" %s && exec cat '
                                '%s/ca-certificates.crt' % (SYSTEM_CERTS,
                                                            SYSTEM_CERTS),
                                store], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
            with open(ca, 'rb') as f:
                if p.returncode != 0:
                    t.skip('a private CA store', 'unshare --mount or mount '
                           '--bind failed: %s'
                           % p.stdout.decode(errors='replace').strip())
                else:
                    store_ok = t.ok(p.stdout == f.read(), 'the private store '
                                    'stands in for the system\'s', p.stdout)

        if store_ok:
            # the rig: with no CA, the store is what is trusted
            kc = kubeconfig(os.path.join(workdir, 'noca'), imp, cluster.token)
            rc, out, err = kle(lock + ['--kubeconfig', kc], store)
            t.ok(rc == 3 and len(reached()) == 1,
                 'no CA configured: the system store is trusted (client-go: '
                 'system roots); the impostor in it gets the request',
                 'rc %d\n%s%s' % (rc, out, err))
            rc, out, err = kle(lock + ['--kubeconfig', kc])
            t.ok(rc == 1 and len(reached()) == 1,
                 'no CA, the machine\'s own store: the impostor is refused',
                 'rc %d\n%s%s' % (rc, out, err))

            # a configured CA is the only anchor, even with the impostor's CA
            # in the default CA file and CA path
            for what, args in (('certificate-authority', {'ca': cluster_ca}),
                               ('certificate-authority-data',
                                {'ca_data': cluster_ca_data})):
                kc = kubeconfig(os.path.join(workdir, 'ca'), imp,
                                cluster.token, **args)
                before = len(reached())
                rc, out, err = kle(lock + ['--kubeconfig', kc], store)
                t.ok(rc == 1 and 'transport error' in err,
                     '%s: the impostor\'s certificate is refused' % what,
                     'rc %d\n%s%s' % (rc, out, err))
                t.is_(len(reached()) - before, 0,
                      '%s: the impostor gets no request, so no token' % what)

            tok = os.path.join(cluster.dir, 'token')
            rc, out, err = kle(lock + ['--server', imp, '--ca-file',
                                       cluster_ca, '--token-file', tok], store)
            t.ok(rc == 1 and not reached()[1:],
                 '--ca-file: the impostor is refused and gets no request',
                 'rc %d\n%s%s' % (rc, out, err))

            # the real cluster, same store: its CA still works
            kc = kubeconfig(os.path.join(workdir, 'good'), cluster.url,
                            cluster.token, ca=cluster_ca)
            rc, out, err = kle(lock + ['--kubeconfig', kc], store)
            t.is_(rc, 3, 'the cluster with its CA answers (lock not found)')

        # credentials over http:// are refused before anything is sent
        plain = 'http://127.0.0.1:%d' % impostor.port
        kc = kubeconfig(os.path.join(workdir, 'http'), plain, cluster.token)
        before = len(reached())
        rc, out, err = kle(lock + ['--kubeconfig', kc])
        t.ok(rc == 2 and 'only sent over https://' in err
             and cluster.token not in err,
             'kubeconfig: a token with an http:// server is refused',
             'rc %d\n%s' % (rc, err))
        rc, out, err = kle(lock + ['--server', plain, '--token-file',
                                   os.path.join(cluster.dir, 'token')])
        t.ok(rc == 2 and 'only sent over https://' in err,
             '--server http:// with --token-file is refused',
             'rc %d\n%s' % (rc, err))
        t.is_(len(reached()) - before, 0, 'http://: nothing sent')

        kc = kubeconfig(os.path.join(workdir, 'insecure'), cluster.url,
                        cluster.token, ca=cluster_ca, insecure=True)
        rc, out, err = kle(lock + ['--kubeconfig', kc])
        t.ok(rc == 2 and 'insecure-skip-tls-verify is not allowed' in err,
             'a CA with insecure-skip-tls-verify is refused',
             'rc %d\n%s' % (rc, err))

        # the same rules in nginx -t, through the module's message
        if not (NGINX and os.path.exists(MODULE)):
            t.skip('nginx -t', 'the module is not built (make module)')
        else:
            tok = os.path.join(cluster.dir, 'token')
            for what, api, want in (
                    ('a CA with insecure', 'kubeconfig '
                     + os.path.join(workdir, 'insecure'),
                     'certificate-authority together with '
                     'insecure-skip-tls-verify is not allowed in '
                     'leader_election "web"'),
                    ('a kubeconfig token over http://', 'kubeconfig '
                     + os.path.join(workdir, 'http'),
                     'are only sent over https:// in leader_election '
                     '"web"'),
                    ('token_file over http://',
                     '%s; token_file %s' % (plain, tok),
                     'server "%s": credentials (a bearer token or a client '
                     'certificate) are only sent over https://' % plain)):
                ok, out = nginx_t(os.path.join(workdir, 'ngx'), api)
                t.ok(not ok and want in out and cluster.token not in out,
                     'nginx -t refuses %s' % what, out)
            ok, out = nginx_t(os.path.join(workdir, 'ngx'), plain)
            t.ok(ok, 'nginx -t: http:// without credentials is accepted',
                 out)

    finally:
        impostor.stop()
        cluster.stop()

    keep_or_remove(t, workdir)


if __name__ == '__main__':
    from tap import Tap
    Tap().run(main)
