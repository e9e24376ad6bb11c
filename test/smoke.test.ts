import t from 'tap';
import { version } from '../src/index';
t.equal(version, '0.1.0');
