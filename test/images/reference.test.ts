import { describe, expect, it } from 'vitest';
import { familiarName, formatReference, parseReference } from '../../src/images/reference.js';

const D = `sha256:${'ab'.repeat(32)}`;

describe('image references', () => {
  it.each([
    ['bash:4.4', 'docker.io/library/bash:4.4'],
    ['bash', 'docker.io/library/bash:latest'],
    ['user/app', 'docker.io/user/app:latest'],
    ['docker.io/bash', 'docker.io/library/bash:latest'],
    ['index.docker.io/library/bash:1', 'docker.io/library/bash:1'],
    ['quay.io/org/sub/app:v1.2', 'quay.io/org/sub/app:v1.2'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/app:x', 'localhost:5000/app:x'],
    ['127.0.0.1:5000/library/bb:1', '127.0.0.1:5000/library/bb:1'],
    ['[::1]:5000/app', '[::1]:5000/app:latest'],
    ['Registry/app', 'Registry/app:latest'],
    ['a__b-c/d.e---f_g', 'docker.io/a__b-c/d.e---f_g:latest'],
    [`bash@${D}`, `docker.io/library/bash@${D}`],
    [`bash:4.4@${D}`, `docker.io/library/bash:4.4@${D}`],
    ['host:5000/a/b:TAG_1.x-y', 'host:5000/a/b:TAG_1.x-y'],
  ])('%s is %s', (ref, full) => {
    expect(formatReference(parseReference(ref))).toBe(full);
  });

  it('the digest wins over the tag, and familiar names drop docker.io/library', () => {
    const r = parseReference(`bash:4.4@${D}`);
    expect(r.digest).toBe(D);
    expect(familiarName(r)).toBe('bash');
    expect(familiarName(parseReference('user/app'))).toBe('user/app');
    expect(familiarName(parseReference('localhost:5000/app'))).toBe('localhost:5000/app');
  });

  it.each([
    ['', /empty/],
    ['Bash', /lowercase/],
    ['user/App', /lowercase/],
    ['bash:', /empty tag/],
    ['bash:-x', /bad tag/],
    [`bash:${'a'.repeat(129)}`, /bad tag/],
    ['bash@sha256:abc', /bad digest|64 lowercase/],
    [`bash@sha256:${'AB'.repeat(32)}`, /64 lowercase/],
    [`bash@md5:${'a'.repeat(32)}`, /unsupported digest/],
    ['bash@', /bad digest/],
    ['a//b', /empty path component/],
    ['/bash', /empty path component/],
    ['bash/', /empty path component/],
    ['-bash', /bad repository name/],
    ['ba..sh', /bad repository name/],
    ['ex ample', /white space/],
    ['host:99999/app', /bad port/],
    ['host:/app', /bad port/],
    ['-h.io/app', /bad registry host/],
    [':tag', /empty name/],
    [`${'a'.repeat(250)}/${'b'.repeat(10)}`, /longer than 255/],
  ])('%j is refused', (ref, why) => {
    let msg = '';
    try {
      parseReference(ref);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/^invalid reference format: /);
    expect(msg).toMatch(why);
    expect(msg).not.toContain('\n');
  });
});
